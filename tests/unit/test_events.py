"""`watch` reads podman's events: lines as podman 4.3 (Debian 12) and 5.4
(Debian 13, the podman 5 lab) wrote them, captured on this project's machines."""

from __future__ import annotations

import pytest

from multihome_hook.containers import watched

CID4 = "55462fd0eefc2617ee8fb7ada3b897a098bb52433dca429aa7745bdf723a1c52"
CID5 = "32c39e6b61fe3b5247e05de5c29208da2504f1e03b8734ab03788b61a1dc0083"
PODMAN4 = {
    "create": f'{{"ID":"{CID4}","Name":"mhtest-25249-2","Status":"create","Time":'
              '"2026-11-25T15:36:55.560355122Z","Type":"container","Attributes":{}}',
    "start": f'{{"ID":"{CID4}","Name":"mhtest-25249-2","Status":"start","Time":'
             '"2026-11-25T15:36:55.666819227Z","Type":"container","Attributes":{}}',
    "connect": f'{{"ID":"{CID4}","Name":"mhtest-25249-2","network":"mhtest25249n1",'
               '"Status":"connect","Time":"2026-11-25T15:36:55.710580905Z","Type":"network",'
               '"Attributes":null}',
    "disconnect": f'{{"ID":"{CID4}","Name":"mhtest-25249-2","network":"mhtest25249n1",'
                  '"Status":"disconnect","Time":"2026-11-25T15:36:55.763399862Z",'
                  '"Type":"network","Attributes":null}',
    "died": f'{{"ContainerExitCode":137,"ID":"{CID4}","Name":"mhtest-25249-2","Status":"died",'
            '"Time":"2026-11-25T15:36:55.983193717Z","Type":"container","Attributes":{}}',
}
PODMAN5 = {
    "create": f'{{"ID":"{CID5}","Name":"cap","Status":"create","time":1795621052,'
              '"timeNano":1795621052915026588,"Type":"container","Attributes":{}}',
    "start": f'{{"ID":"{CID5}","Name":"cap","Status":"start","time":1795621053,'
             '"timeNano":1795621053000228024,"Type":"container","Attributes":{}}',
    "connect": f'{{"ID":"{CID5}","Name":"cap","network":"mh5m","Status":"connect",'
               '"time":1795621053,"timeNano":1795621053030641684,"Type":"network",'
               '"Attributes":null}',
    "disconnect": f'{{"ID":"{CID5}","Name":"cap","network":"mh5m","Status":"disconnect",'
                  '"time":1795621053,"timeNano":1795621053062263824,"Type":"network",'
                  '"Attributes":null}',
    "died": f'{{"ContainerExitCode":137,"ID":"{CID5}","Name":"cap","Status":"died",'
            '"time":1795621053,"timeNano":1795621053131565002,"Type":"container",'
            '"Attributes":{}}',
}
VERSIONS = [pytest.param(PODMAN4, CID4, "mhtest25249n1", id="podman4"),
            pytest.param(PODMAN5, CID5, "mh5m", id="podman5")]


@pytest.mark.parametrize(("lines", "cid", "network"), VERSIONS)
def test_network_events(lines: dict[str, str], cid: str, network: str) -> None:
    for status in ("connect", "disconnect"):
        event = watched(lines[status] + "\n")
        assert event is not None
        assert (event.id, event.type, event.status, event.network) == (
            cid, "network", status, network)


@pytest.mark.parametrize(("lines", "cid", "network"), VERSIONS)
def test_a_start(lines: dict[str, str], cid: str, network: str) -> None:
    event = watched(lines["start"])
    assert event is not None
    assert (event.id, event.type, event.status) == (cid, "container", "start")


@pytest.mark.parametrize(("lines", "cid", "network"), VERSIONS)
def test_an_end_drops_what_waits(lines: dict[str, str], cid: str, network: str) -> None:
    event = watched(lines["died"])
    assert event is not None
    assert (event.id, event.type, event.status) == (cid, "container", "died")


@pytest.mark.parametrize(("lines", "cid", "network"), VERSIONS)
def test_events_watch_does_not_act_on(lines: dict[str, str], cid: str, network: str) -> None:
    assert watched(lines["create"]) is None


@pytest.mark.parametrize("line", ["", "not json", "[]", '{"Type":"network","Status":"connect"}',
                                  '{"ID":["x"],"Type":"network","Status":"connect"}'])
def test_lines_that_are_no_event(line: str) -> None:
    assert watched(line) is None
