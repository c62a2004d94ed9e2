"""Fake ``kind`` and ``kubectl`` for stagegate's tests; see README.md beside this package.

``bin/kind`` and ``bin/kubectl`` call :func:`.cli.main`. The fakes speak the argv and the output
formats of kind v0.27 and kubectl v1.32, refuse anything else the way those CLIs refuse
(exit 1), keep their state under ``$FAKE_K8S_STATE`` and log every call to ``calls.jsonl``.
Each format names its source in a comment: "kind:" is kubernetes-sigs/kind, "kubectl:" is
kubernetes/kubectl, "k8s:" is kubernetes/kubernetes, "crictl:" is kubernetes-sigs/cri-tools.

Where things are:

- shared: :mod:`.cli` (the entry point, pflag's argv parsing), :mod:`.output` (stdout, stderr,
  ``Failure``), :mod:`.state` (``$FAKE_K8S_STATE``, the scenario, the call log),
  :mod:`.formats` (digests, names, times, image references);
- kind: :mod:`.kind` (the commands), :mod:`.kind_create`, :mod:`.kind_load`,
  :mod:`.kubeconfig`, :mod:`.node` (the node container, its containerd config and images);
- the API server: :mod:`.objects` (kinds, stored objects, selectors), :mod:`.crds`,
  :mod:`.validation` (what it refuses of an applied object);
- how objects evolve over time: :mod:`.timelines` (the scenario's timelines, each workload's
  pods), :mod:`.pods`, :mod:`.events`, :mod:`.status` (the controllers' status),
  :mod:`.pulls` (whether the node could pull an image);
- kubectl: :mod:`.kubectl` (flags, the kubeconfig's cluster, ``version``, ``config``),
  :mod:`.manifests` (``-f``/``-k``), and a module per verb, imported when it runs:
  :mod:`.apply`, :mod:`.get`, :mod:`.describe`, :mod:`.logs`, :mod:`.delete`,
  :mod:`.port_forward`.
"""
