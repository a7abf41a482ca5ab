"""Server text frames framed by hand are byte for byte what websockets would send."""

from __future__ import annotations

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.protocol import Side, State
from websockets.server import ServerProtocol

from hubbub.transport._ws_batching import queue_server_text


class _Connection:
    """What queue_server_text uses of a websockets connection: its protocol."""

    def __init__(self, protocol: ServerProtocol) -> None:
        self.protocol = protocol


def open_server_protocol() -> ServerProtocol:
    protocol = ServerProtocol()
    protocol.state = State.OPEN
    return protocol


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_every_length_field_form_matches_websockets(length: int) -> None:
    data = ("é" * length).encode()[:length]
    protocol = open_server_protocol()
    queue_server_text(_Connection(protocol), data)  # type: ignore[arg-type]
    expected = Frame(Opcode.TEXT, data).serialize(mask=False, extensions=[])
    assert protocol.data_to_send() == [expected]


def test_frames_queue_in_order_with_frames_websockets_made() -> None:
    protocol = open_server_protocol()
    connection = _Connection(protocol)
    queue_server_text(connection, b'{"n": 1}')  # type: ignore[arg-type]
    protocol.send_text(b'{"n": 2}')
    queue_server_text(connection, b'{"n": 3}')  # type: ignore[arg-type]
    payloads = [chunk[2:] for chunk in protocol.data_to_send()]
    assert payloads == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}']


def test_anything_but_a_plain_open_server_goes_through_websockets() -> None:
    closing = open_server_protocol()
    closing.state = State.CLOSING
    with pytest.raises(Exception, match="closing"):
        queue_server_text(_Connection(closing), b"late")  # type: ignore[arg-type]
    compressed = open_server_protocol()
    compressed.extensions = [PerMessageDeflate(False, False, 15, 15)]
    queue_server_text(_Connection(compressed), b"x" * 200)  # type: ignore[arg-type]
    [frame] = compressed.data_to_send()
    assert frame[0] & 0x40  # RSV1: websockets compressed it
    assert ServerProtocol().side is Side.SERVER
