"""Contract: the check that holds what the fakes print against the Kubernetes v1.32 API
(tests/k8s_schema.py's assert_api_shaped) refuses what the API would not send. The fake kubectl's
objects themselves, on a fake kind cluster: tests/integration/test_contract_fakes.py.
"""

from __future__ import annotations

import json

import pytest

from tests.k8s_schema import NotAPIShaped, assert_api_shaped


def test_the_helper_refuses_what_the_api_would_not_send() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}
    assert_api_shaped(pod)
    with pytest.raises(NotAPIShaped, match="Additional properties"):
        assert_api_shaped({**pod, "statuz": {}})
    with pytest.raises(NotAPIShaped, match="not of type"):
        assert_api_shaped({**pod, "spec": {"containers": [], "hostNetwork": "yes"}})
    with pytest.raises(NotAPIShaped, match="a v1 List has"):
        assert_api_shaped({"apiVersion": "v1", "kind": "List", "items": {}})
    listed = json.loads(json.dumps({"apiVersion": "v1", "kind": "List", "items": [pod], "metadata": {}}))
    assert assert_api_shaped(listed) == 1
