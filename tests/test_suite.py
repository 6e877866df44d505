"""The suite's own scheduling: conftest's groups must reach pytest-xdist intact."""

import pytest
from xdist.scheduler.loadgroup import LoadGroupScheduling


# parametrized so that, run alone, it still checks a group named after a bracketed test id
@pytest.mark.parametrize("copy", ["first", "second"])
def test_every_group_reaches_xdist_as_one_group(copy, request):
    # xdist appends "@group" to each node id and reads the group back from it; a group it cannot
    # read back becomes one group per test, and the tests' shared fixtures are made once per worker
    items = request.session.items
    assert any("[" in item.nodeid for item in items)
    for item in items:
        group = item.get_closest_marker("xdist_group").args[0]
        assert LoadGroupScheduling._split_scope(None, f"{item.nodeid}@{group}") == group, item.nodeid
