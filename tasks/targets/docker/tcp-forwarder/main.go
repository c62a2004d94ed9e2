// Command tcp-forwarder maps a Kubernetes Service's ports to its pods' target ports on the
// docker target, as kube-proxy does on a node.
//
//	tcp-forwarder BACKEND PORT:TARGET [PORT:TARGET ...]
//
// It listens on every PORT and, for each connection, resolves BACKEND (the network alias that
// only the selected pods carry) through the engine's DNS, so replicas and restarted containers
// are found; it dials TARGET on one of the addresses (in random order, the next one when a dial
// fails) and copies bytes both ways until both sides have closed.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const dialTimeout = 5 * time.Second

type mapping struct {
	port   int
	target int
}

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	backend, mappings, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "tcp-forwarder: %v\nusage: tcp-forwarder BACKEND PORT:TARGET [PORT:TARGET ...]\n", err)
		os.Exit(2)
	}
	rand.Seed(time.Now().UnixNano())
	for _, m := range mappings {
		listener, err := net.Listen("tcp", ":"+strconv.Itoa(m.port))
		if err != nil {
			log.Fatalf("listen on port %d: %v", m.port, err)
		}
		log.Printf("forwarding port %d to %s port %d", m.port, backend, m.target)
		go serve(listener, backend, m.target)
	}
	// As PID 1 of its container nothing else ends it: leave at once on `docker stop`.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	log.Printf("stopping on %v", <-stop)
}

func parse(args []string) (string, []mapping, error) {
	if len(args) < 2 {
		return "", nil, fmt.Errorf("expected a backend name and at least one PORT:TARGET")
	}
	var mappings []mapping
	for _, arg := range args[1:] {
		port, target, found := strings.Cut(arg, ":")
		if !found {
			return "", nil, fmt.Errorf("%q is not PORT:TARGET", arg)
		}
		p, err1 := strconv.Atoi(port)
		t, err2 := strconv.Atoi(target)
		if err1 != nil || err2 != nil || p < 1 || p > 65535 || t < 1 || t > 65535 {
			return "", nil, fmt.Errorf("%q: ports are numbers from 1 to 65535", arg)
		}
		mappings = append(mappings, mapping{p, t})
	}
	return args[0], mappings, nil
}

func serve(listener net.Listener, backend string, target int) {
	for {
		client, err := listener.Accept()
		if err != nil {
			log.Printf("accept: %v", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go forward(client.(*net.TCPConn), backend, target)
	}
}

func forward(client *net.TCPConn, backend string, target int) {
	defer client.Close()
	upstream, err := dial(backend, target)
	if err != nil {
		log.Printf("%s -> %s:%d: %v", client.RemoteAddr(), backend, target, err)
		return
	}
	defer upstream.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(upstream, client)
		upstream.CloseWrite()
	}()
	io.Copy(client, upstream)
	client.CloseWrite()
	wg.Wait()
}

// dial resolves backend now (never a cached answer) and connects to target on one of its
// addresses, trying the others when a dial fails.
func dial(backend string, target int) (*net.TCPConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	addresses, err := net.DefaultResolver.LookupHost(ctx, backend)
	if err != nil {
		return nil, fmt.Errorf("no endpoints: %v", err)
	}
	rand.Shuffle(len(addresses), func(i, j int) { addresses[i], addresses[j] = addresses[j], addresses[i] })
	for _, address := range addresses {
		conn, dialErr := net.DialTimeout("tcp", net.JoinHostPort(address, strconv.Itoa(target)), dialTimeout)
		if dialErr == nil {
			return conn.(*net.TCPConn), nil
		}
		err = dialErr
	}
	return nil, err
}
