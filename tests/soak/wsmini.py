"""wsmini - the smallest asyncio WebSocket client that scripts/soak needs:
thousands of sockets in one thread (websocket-client would need a thread
per socket). RFC 6455 client side: handshake with a cookie, masked text
frames out, fragmented frames in, answers pings, clean or abrupt close."""

import asyncio
import base64
import os
import struct


class HandshakeError(Exception):
    pass


class WS:
    def __init__(self, reader, writer):
        self.r = reader
        self.w = writer
        self.closed = False
        self.eof = False
        self.close_code = None
        self.queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._pump())

    @classmethod
    async def connect(cls, host, port, path, token=None, timeout=15):
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   "Sec-WebSocket-Version: 13\r\n")
            if token:
                req += f"Cookie: sessionid={token}\r\n"
            writer.write((req + "\r\n").encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            status = head.split(b"\r\n", 1)[0].split()
            if len(status) < 2 or status[1] != b"101":
                raise HandshakeError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
        except BaseException:
            writer.transport.abort()
            raise
        return cls(reader, writer)

    def _send_frame(self, opcode, payload):
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        if n:
            m = (mask * (n // 4 + 1))[:n]
            payload = (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big")
        self.w.write(head + mask + payload)

    def send_text(self, text):
        self._send_frame(0x1, text.encode() if isinstance(text, str) else text)

    async def _frame(self):
        h = await self.r.readexactly(2)
        fin, op, masked, n = h[0] & 0x80, h[0] & 0x0F, h[1] & 0x80, h[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.r.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.r.readexactly(8))[0]
        mask = await self.r.readexactly(4) if masked else None
        data = await self.r.readexactly(n) if n else b""
        if mask:
            m = (mask * (n // 4 + 1))[:n]
            data = (int.from_bytes(data, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big")
        return fin, op, data

    async def _pump(self):
        """Read messages into the queue, so that a recv() cancelled by a
        timeout never leaves half a frame read."""
        parts = []
        try:
            while True:
                fin, op, data = await self._frame()
                if op == 0x9:
                    self._send_frame(0xA, data)
                elif op == 0xA:
                    pass
                elif op == 0x8:
                    self.close_code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
                    return
                else:
                    parts.append(data)
                    if fin:
                        self.queue.put_nowait(b"".join(parts))
                        parts = []
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.closed = True
            self.queue.put_nowait(None)

    async def recv(self):
        """The next text/binary message as bytes; None once closed."""
        if self.eof:
            return None
        msg = await self.queue.get()
        if msg is None:
            self.eof = True
        return msg

    async def close(self, clean=True, timeout=2):
        """clean: close frame, wait for the server's; else drop the TCP
        connection without a word."""
        if clean and not self.closed:
            try:
                self._send_frame(0x8, struct.pack("!H", 1000))
                await asyncio.wait_for(asyncio.shield(self.task), timeout)
            except (asyncio.TimeoutError, ConnectionError, OSError):
                pass
        self.closed = True
        self.w.transport.abort()
        self.task.cancel()
