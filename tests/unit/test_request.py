"""parse_state, parse_mode and parse_primary: the hook's untrusted input."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from multihome_hook import request
from multihome_hook.errors import HookError, InvalidAnnotation, InvalidState
from multihome_hook.modes import FIXES, LOOSE, MODE_KEY, MODES, OFF, ONE_DEFAULT, Mode, parse_mode
from multihome_hook.primary import PRIMARY_KEY, Gateway, Name, Subnet, parse_primary
from multihome_hook.request import Request

if TYPE_CHECKING:
    from multihome_hook.primary import Primary

CONTAINER_ID = "3f1c2e9a7b6d" + "0" * 52
PID = 4242
ABSENT = object()  # marks a field left out of the state
# What the hook's refusal of an annotation starts with: the journal's line
# names the container.
NAMED = f"container {CONTAINER_ID[:12]}: "


def state(**fields: object) -> bytes:
    """The OCI state podman writes, with `fields` replaced (or left out)."""
    document: dict[str, object] = {
        "ociVersion": "1.0.2",
        "id": CONTAINER_ID,
        "status": "created",
        "pid": PID,
        "bundle": "/var/lib/containers/storage/overlay-containers/x/userdata",
        "annotations": {MODE_KEY: "one-default", PRIMARY_KEY: "eth1"},
    }
    document |= fields
    return json.dumps({k: v for k, v in document.items() if v is not ABSENT}).encode()


def annotated(**annotations: str) -> bytes:
    """A state whose annotations are exactly `annotations` (keys: mode, primary)."""
    keys = {"mode": MODE_KEY, "primary": PRIMARY_KEY}
    return state(annotations={keys[k]: v for k, v in annotations.items()})


def error_of(kind: type[HookError], call: Callable[[], object]) -> str:
    """The message of the `kind` of HookError `call()` raises (its class is
    the hook's exit status), checked to be one line."""
    with pytest.raises(kind) as info:
        call()
    message = str(info.value)
    assert message
    assert message.splitlines() == [message]
    return message


# --- parse_state: valid ------------------------------------------------------------

def test_valid_state() -> None:
    assert request.parse_state(state()) == Request(
        container_id=CONTAINER_ID, pid=PID, mode=ONE_DEFAULT, primary=Name("eth1"))


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_every_mode_accepted(mode: Mode) -> None:
    assert parse_mode(mode.name) is mode
    parsed = request.parse_state(annotated(mode=mode.name))
    assert parsed.mode is mode
    assert parsed.primary is None


@pytest.mark.parametrize("raw", [
    pytest.param(annotated(), id="no-annotation"),
    pytest.param(annotated(primary="eth1"), id="primary-only"),
    pytest.param(state(annotations=ABSENT), id="no-annotations"),
    pytest.param(state(annotations=None), id="annotations-null"),
])
def test_missing_mode_is_off(raw: bytes) -> None:
    assert request.parse_state(raw).mode is OFF


def test_other_annotations_ignored() -> None:
    parsed = request.parse_state(state(annotations={
        MODE_KEY: "loose", "io.podman.annotations.label": "disable", "org.example": ""}))
    assert (parsed.mode, parsed.primary) == (LOOSE, None)


def test_state_of_exactly_max_bytes_accepted() -> None:
    raw = state()
    raw += b" " * (request.MAX_STATE_BYTES - len(raw))
    assert len(raw) == request.MAX_STATE_BYTES
    assert request.parse_state(raw).pid == PID


# --- parse_mode: invalid -------------------------------------------------------------

@pytest.mark.parametrize("value", ["LOOSE", "loose\n", "", "../../etc", " loose", "x" * 10_000],
                         ids=repr)
def test_unknown_mode(value: str) -> None:
    raw = annotated(mode=value)
    for call, prefix in ((lambda: parse_mode(value), ""),
                         (lambda: request.parse_state(raw), NAMED)):
        message = error_of(InvalidAnnotation, call)
        assert message.startswith(prefix)
        message = message[len(prefix):]
        assert message.startswith(f"unknown {MODE_KEY} ")
        fixed = len(f"unknown {MODE_KEY} : expected one of {', '.join(map(str, MODES))}")
        assert len(message) - fixed <= 70
        assert "x" * 71 not in message


# --- parse_state: invalid ------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    pytest.param(b"", id="empty"),
    pytest.param(b" \n\t\r\n", id="whitespace"),
    pytest.param(b"{not json", id="not-json"),
    pytest.param(b'{"id": "a",\n"pid": }', id="not-json-multiline"),
    pytest.param(b"\xff\xfe{", id="not-utf8"),
    pytest.param(b"[]", id="json-list"),
    pytest.param(b'["id", "pid"]', id="json-list-of-strings"),
    pytest.param(b'"state"', id="json-string"),
    pytest.param(b"null", id="json-null"),
    pytest.param(state(id=ABSENT), id="id-missing"),
    pytest.param(state(id=""), id="id-empty"),
    pytest.param(state(id=42), id="id-int"),
    pytest.param(state(pid=ABSENT), id="pid-missing"),
    pytest.param(state(pid=None), id="pid-null"),
    pytest.param(state(pid=0), id="pid-0"),
    pytest.param(state(pid=-1), id="pid-negative"),
    pytest.param(state(pid="123"), id="pid-string"),
    pytest.param(state(pid=True), id="pid-true"),
    pytest.param(state(pid=12.5), id="pid-float"),
    pytest.param(state(annotations="io.multihome.mode=loose"), id="annotations-string"),
    pytest.param(state(annotations=[MODE_KEY, "loose"]), id="annotations-list"),
    pytest.param(state(annotations=[]), id="annotations-empty-list"),
    pytest.param(state(annotations=7), id="annotations-int"),
    pytest.param(state(annotations={MODE_KEY: 1}), id="annotation-int"),
    pytest.param(state(annotations={MODE_KEY: None}), id="annotation-null"),
    pytest.param(state(annotations={MODE_KEY: ["loose"]}), id="annotation-list"),
    pytest.param(state(annotations={"other": {"a": "b"}}), id="other-annotation-map"),
    pytest.param(b"{" + b" " * request.MAX_STATE_BYTES + b"}", id="too-large"),
    pytest.param(state(id="x" * request.MAX_STATE_BYTES), id="too-large-id"),
    pytest.param(state(id="3f1c2e\nforged line", pid=ABSENT), id="id-with-newline"),
])
def test_invalid_state(raw: bytes) -> None:
    message = error_of(InvalidState, lambda: request.parse_state(raw))
    assert len(message) <= 200


def test_too_large_state_says_so() -> None:
    raw = state()
    raw += b" " * (request.MAX_STATE_BYTES + 1 - len(raw))
    assert "larger than" in error_of(InvalidState, lambda: request.parse_state(raw))


# --- parse_primary ----------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("eth1", Name("eth1")),
    ("br-lan.10", Name("br-lan.10")),
    ("a" * 15, Name("a" * 15)),
    ("a-podman-network.name_64", Name("a-podman-network.name_64")),
    ("198.18.11.0/24", Subnet(ipaddress.IPv4Network("198.18.11.0/24"))),
    ("198.18.11.5/24", Subnet(ipaddress.IPv4Network("198.18.11.0/24"))),
    ("fd18:11::/64", Subnet(ipaddress.IPv6Network("fd18:11::/64"))),
    ("fd18:11::5/64", Subnet(ipaddress.IPv6Network("fd18:11::/64"))),
    ("198.18.11.1", Gateway(ipaddress.IPv4Address("198.18.11.1"))),
    ("fd18:11::1", Gateway(ipaddress.IPv6Address("fd18:11::1"))),
], ids=str)
def test_primary(value: str, expected: Primary) -> None:
    assert parse_primary(value) == expected
    assert request.parse_state(annotated(mode="one-default", primary=value)).primary == expected


@pytest.mark.parametrize("value", [
    "../x", "eth0/rp_filter", "a" * 65, "", "eth 0", "eth0;rm", "x" * 5000, "300.1.1.1/24",
    ".", "..", "eth0\n", "-eth0", "198.18.11.0/33", "fd18:11::/129", "eth0\x00",
], ids=repr)
def test_invalid_primary(value: str) -> None:
    raw = annotated(mode="one-default", primary=value)
    for call, prefix in ((lambda: parse_primary(value), ""),
                         (lambda: request.parse_state(raw), NAMED)):
        message = error_of(InvalidAnnotation, call)
        assert message.startswith(prefix)
        message = message[len(prefix):]
        assert message.startswith(f"invalid {PRIMARY_KEY} ")
        assert "x" * 71 not in message
        assert len(message) <= 250


# --- the hooks.d JSON: which annotation values start the hook ---------------------

def hook_json_mode_regex() -> str:
    spec = json.loads((Path(__file__).parents[2] / "oci-hooks.d" / "oci-multihome-hook.json")
                      .read_text())
    ((key, value),) = spec["when"]["annotations"].items()
    assert key == "^io\\.multihome\\.mode$"
    return str(value)


@pytest.mark.parametrize("value", [*(m.name for m in FIXES), "", "o", "of",
                                   "offf", "OFF", "Off", "of f", " off", "off ", "off\n",
                                   "\noff", "bogus", "x" * 10_000], ids=repr)
def test_podman_starts_the_hook_for_every_value_but_off(value: str) -> None:
    # Go's RE2 (podman) reads this subset of the syntax as Python's re does.
    assert re.search(hook_json_mode_regex(), value)


def test_podman_does_not_start_the_hook_for_off() -> None:
    assert not re.search(hook_json_mode_regex(), OFF.name)


# --- io.multihome.rp_filter ---------------------------------------------------------

def test_strict_filtering_with_source_routing() -> None:
    raw = state(annotations={MODE_KEY: "source-routing", "io.multihome.rp_filter": "strict"})
    assert request.parse_state(raw).strict is True
    assert request.parse_state(annotated(mode="source-routing")).strict is False


@pytest.mark.parametrize(("mode", "value", "message"), [
    ("loose", "strict", "io.multihome.rp_filter=strict needs io.multihome.mode=source-routing"),
    ("one-default", "strict", "needs io.multihome.mode=source-routing"),
    ("source-routing", "STRICT", "invalid io.multihome.rp_filter 'STRICT': expected strict"),
    ("source-routing", "loose", "invalid io.multihome.rp_filter 'loose'"),
    ("source-routing", "", "invalid io.multihome.rp_filter ''"),
])
def test_strict_filtering_refused(mode: str, value: str, message: str) -> None:
    raw = state(annotations={MODE_KEY: mode, "io.multihome.rp_filter": value})
    assert message in error_of(InvalidAnnotation, lambda: request.parse_state(raw))
