module stagegate.dev/tcp-forwarder

go 1.19
