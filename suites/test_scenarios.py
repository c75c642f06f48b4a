"""Every scenario of matrix/ as a pytest item (collected by harness/pytest_plugin.py).

pytest suites/ -k colocate            # the colocated scenarios
pytest suites/ -k "tp2 and arv2" -m gpu
pytest suites/ -n 4 --sglang 0.5.12   # pytest-xdist: each worker leases disjoint GPUs
"""

COLOBENCH_MATRIX = True
