"""The gateway websocket: HELLO, IDENTIFY and RESUME, heartbeats, dispatch, replay after a drop.

Gateway control
    ``await wait_until_ready(timeout=10)`` (a live session got READY + GUILD_CREATE or RESUMED);
    ``await drop_gateway(code=4000, resumable=True)`` -- events dispatched while the client is away
    are buffered and replayed on RESUME; ``resumable=False`` invalidates the session (op 9) and
    discord.py re-identifies after its own fixed 5 s ``before_identify`` sleep;
    ``identify_count``, ``resume_count``, ``presence_updates``.
    Gateway frames are plain-text JSON (discord.py only inflates binary frames); op 8
    REQUEST_GUILD_MEMBERS is answered with one GUILD_MEMBERS_CHUNK.

Events the bot causes over REST are echoed on the gateway like Discord does: MESSAGE_CREATE /
UPDATE / DELETE (non-ephemeral only, with ``guild_id`` and ``member``), THREAD_CREATE
(``newly_created``), THREAD_UPDATE / CHANNEL_UPDATE on channel PATCH; plus GUILD_MEMBER_ADD,
GUILD_ROLE_* and CHANNEL_CREATE from the world-building helpers.  Events are filtered by the
identified intents (GUILDS, GUILD_MESSAGES, GUILD_MEMBERS); sessions without the MESSAGE_CONTENT
intent get blank content (unless the bot is mentioned, which a reply with its @ on does, or is the
author; DMs always keep theirs); disallowed privileged intents close the gateway with 4014, a
wrong token with 4004.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import secrets
import traceback
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from loopback.fake_discord.wire import EVENT_BUFFER_LIMIT, THREAD_TYPES, Intents


@dataclass(eq=False)
class _Connection:
    """One websocket; a session may move between connections when it resumes."""

    ws: web.WebSocketResponse
    session: _Session | None = None
    dropped: bool = False


@dataclass(eq=False)
class _Session:
    """A gateway session: sequence numbers and a replay buffer that survive a dropped socket."""

    session_id: str
    intents: int
    conn: _Connection | None = None
    seq: int = 0
    buffer: list[tuple[int, str]] = field(default_factory=list)
    ready: bool = False
    dead: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def live(self) -> bool:
        return (
            not self.dead
            and self.ready
            and self.conn is not None
            and not self.conn.ws.closed
            and not self.conn.dropped
        )


class Gateway:
    """The gateway of :class:`~loopback.fake_discord.FakeDiscord`: sessions, dispatch and replay."""

    def _init_gateway(self) -> None:
        self.presence_updates: list[dict[str, Any]] = []
        self.identify_count = 0
        self.resume_count = 0
        self._sessions: dict[str, _Session] = {}
        self._connections: set[_Connection] = set()
        self._background: set[asyncio.Task[None]] = set()

    async def wait_until_ready(self, timeout: float = 10) -> None:  # noqa: ASYNC109 - part of the agreed test API
        """Wait until some client identified (or resumed) and holds a live, ready session."""
        await self.wait_for(
            lambda: any(s.live for s in self._sessions.values()),
            timeout=timeout,
            message="a bot to connect and receive READY + GUILD_CREATE",
        )

    # ------------------------------------------------------------------ connections

    async def _gateway_handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(timeout=2.0, max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        conn = _Connection(ws=ws)
        self._connections.add(conn)
        try:
            if request.query.get("v", "10") != "10":
                await ws.close(code=4012, message=b"Invalid API version")
                return ws
            if request.query.get("encoding", "json") != "json":
                await ws.close(code=4002, message=b"Decode error")
                return ws
            await ws.send_str(
                json.dumps(
                    {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None, "t": None}
                )
            )
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_gateway_payload(conn, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await ws.close(code=4002, message=b"Decode error")
        except Exception:
            self.internal_errors.append(traceback.format_exc())
            raise
        finally:
            self._connections.discard(conn)
            session = conn.session
            if session is not None and session.conn is conn:
                session.conn = None
                # A client closing with 1000/1001 ends its session on Discord: nothing to resume.
                if not conn.dropped and ws.close_code in (1000, 1001):
                    session.dead = True
            self._notify()
        return ws

    async def _on_gateway_payload(self, conn: _Connection, raw: str) -> None:
        try:
            payload = json.loads(raw)
            op = payload["op"]
        except (ValueError, KeyError, TypeError):
            await conn.ws.close(code=4002, message=b"Decode error")
            return
        data = payload.get("d")
        if op == 1:
            await conn.ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
        elif op == 2:
            await self._identify(conn, data or {})
        elif op == 6:
            await self._resume(conn, data or {})
        elif conn.session is None:
            await conn.ws.close(code=4003, message=b"Not authenticated")
        elif op == 3:
            self.presence_updates.append(data)
            self._notify()
        elif op == 4:
            pass  # voice state updates: no voice support
        elif op == 8:
            await self._request_members(conn.session, data or {})
        else:
            await conn.ws.close(code=4001, message=b"Unknown opcode")

    async def _identify(self, conn: _Connection, data: dict[str, Any]) -> None:
        if conn.session is not None:
            await conn.ws.close(code=4005, message=b"Already authenticated")
            return
        if data.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed")
            return
        intents = data.get("intents")
        if not isinstance(intents, int):
            await conn.ws.close(code=4013, message=b"Invalid intent(s)")
            return
        if intents & Intents.PRIVILEGED & ~self.allowed_privileged_intents:
            await conn.ws.close(code=4014, message=b"Disallowed intent(s)")
            return
        session = _Session(session_id=secrets.token_hex(16), intents=intents, conn=conn)
        conn.session = session
        self._sessions[session.session_id] = session
        self.identify_count += 1
        application = {"id": str(self.application_id), "flags": self._application_flags()}
        ready = {
            "v": 10,
            "user": {**self.bot_user, "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.ws_url,
            "application": application,
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": ["us-east"],
            "guild_join_requests": [],
            "user_settings": {},
            "_trace": ["fake-discord"],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        await self._send_event(session, "READY", ready)
        await self._send_event(session, "GUILD_CREATE", self._guild_create_payload())
        session.ready = True
        self._notify()

    async def _resume(self, conn: _Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed")
            return
        session = self._sessions.get(str(data.get("session_id")))
        seq = data.get("seq")
        seq = seq if isinstance(seq, int) else 0
        resumable = (
            session is not None
            and not session.dead
            and seq <= session.seq
            and (not session.buffer or session.buffer[0][0] <= seq + 1)
        )
        if not resumable or session is None:
            # op 9 with d=false: discord.py closes with 1000 and identifies afresh.
            await conn.ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
            return
        async with session.lock:
            old = session.conn
            if old is not None and old is not conn:
                old.dropped = True
                with contextlib.suppress(Exception):
                    await old.ws.close(code=4000, message=b"session resumed elsewhere")
            for frame_seq, frame in session.buffer:
                if frame_seq > seq:
                    await conn.ws.send_str(frame)
            session.seq += 1
            frame = json.dumps({"op": 0, "t": "RESUMED", "s": session.seq, "d": {"_trace": ["fake-discord"]}})
            session.buffer.append((session.seq, frame))
            await conn.ws.send_str(frame)
            self.resume_count += 1
            conn.session = session
            session.conn = conn
        self._notify()

    async def _request_members(self, session: _Session, data: dict[str, Any]) -> None:
        query = str(data.get("query") or "")
        wanted = {int(u) for u in data.get("user_ids") or []}
        limit = int(data.get("limit") or 0)
        members = [
            self._member_payload(uid)
            for uid, m in self.members.items()
            if (not wanted or uid in wanted) and m["user"]["username"].startswith(query)
        ]
        if limit:
            members = members[:limit]
        chunk: dict[str, Any] = {
            "guild_id": str(self.guild_id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        if data.get("presences"):
            chunk["presences"] = []
        await self._send_event(session, "GUILD_MEMBERS_CHUNK", chunk)

    def _application_flags(self) -> int:
        flags = 0
        if self.allowed_privileged_intents & Intents.MESSAGE_CONTENT:
            flags |= 1 << 19  # GATEWAY_MESSAGE_CONTENT_LIMITED
        if self.allowed_privileged_intents & Intents.GUILD_MEMBERS:
            flags |= 1 << 15
        return flags

    def _guild_create_payload(self) -> dict[str, Any]:
        active_threads = [
            copy.deepcopy(c)
            for c in self.channels.values()
            if c["type"] in THREAD_TYPES
            and not c["thread_metadata"]["archived"]
            and self._place(c) == "guild"
        ]
        return {
            "id": str(self.guild_id),
            "name": self.guild_name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": self.owner_user["id"],
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": copy.deepcopy(list(self.roles.values())),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": str(self.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "incidents_data": None,
            "joined_at": self._joined_at,
            "large": False,
            "unavailable": False,
            "lazy": True,
            "member_count": len(self.members),
            "voice_states": [],
            "members": [self._member_payload(uid) for uid in self.members],
            "channels": [
                copy.deepcopy(c)
                for c in self.channels.values()
                if c["type"] not in THREAD_TYPES and self._place(c) == "guild"
            ],
            "threads": active_threads,
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    # ------------------------------------------------------------------ dispatch

    async def _send_event(self, session: _Session, event: str, data: Any) -> None:
        """Assign the next sequence number, buffer the frame for RESUME and send it if connected."""
        async with session.lock:
            session.seq += 1
            frame = json.dumps({"op": 0, "t": event, "s": session.seq, "d": data})
            session.buffer.append((session.seq, frame))
            if len(session.buffer) > EVENT_BUFFER_LIMIT:
                del session.buffer[: len(session.buffer) - EVENT_BUFFER_LIMIT]
            conn = session.conn
            if conn is not None and not conn.dropped and not conn.ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.ws.send_str(frame)

    def _event_allowed(self, session: _Session, event: str, data: Any) -> bool:
        if event.startswith("MESSAGE_"):
            in_dm = "guild_id" not in data
            return bool(session.intents & (Intents.DIRECT_MESSAGES if in_dm else Intents.GUILD_MESSAGES))
        if event.startswith(("THREAD_", "CHANNEL_", "GUILD_ROLE_")):
            return bool(session.intents & Intents.GUILDS)
        if event.startswith("GUILD_MEMBER_"):
            return bool(session.intents & Intents.GUILD_MEMBERS)
        return True

    def _for_session(self, session: _Session, event: str, data: Any) -> Any:
        """Blank message content for sessions lacking MESSAGE_CONTENT, like Discord does."""
        if event not in ("MESSAGE_CREATE", "MESSAGE_UPDATE") or session.intents & Intents.MESSAGE_CONTENT:
            return data
        if "guild_id" not in data:
            return data  # DMs with the bot always carry their content
        bot_id = str(self._bot_id())
        author_id = (data.get("author") or {}).get("id")
        if author_id == bot_id or any(u.get("id") == bot_id for u in data.get("mentions", [])):
            return data
        stripped = dict(data)
        stripped.update(content="", embeds=[], attachments=[], components=[])
        stripped.pop("poll", None)
        return stripped

    async def _broadcast(self, event: str, data: Any) -> None:
        """Dispatch an event to every session that has not ended (buffered while disconnected)."""
        for session in list(self._sessions.values()):
            if session.dead or not session.ready or not self._event_allowed(session, event, data):
                continue
            await self._send_event(session, event, self._for_session(session, event, data))
        self._notify()

    def _broadcast_soon(self, event: str, data: Any) -> None:
        """Dispatch from synchronous helpers: scheduled on the running loop, if any."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if any(not s.dead and s.ready for s in self._sessions.values()):
            task = loop.create_task(self._broadcast(event, copy.deepcopy(data)))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _interaction_session(self) -> _Session:
        for session in reversed(list(self._sessions.values())):
            if not session.dead and session.ready:
                return session
        raise RuntimeError("no bot is connected to the fake gateway (await fake.wait_until_ready() first)")

    async def drop_gateway(self, *, code: int = 4000, resumable: bool = True) -> None:
        """Cut every live gateway socket so the client reconnects.

        With ``resumable=True`` (default) the socket is closed with ``code`` (4000, "unknown error",
        which discord.py treats as resumable) and the session keeps buffering events for RESUME.
        With ``resumable=False`` the session is invalidated (op 9, d=false) so the client
        re-identifies and gets a fresh READY + GUILD_CREATE -- after discord.py's built-in 5 s
        ``before_identify`` sleep for non-initial identifies, so budget for it.
        """
        targets = [s for s in self._sessions.values() if not s.dead and s.conn is not None]
        if not targets:
            raise RuntimeError("no connected gateway session to drop")
        for session in targets:
            conn = session.conn
            assert conn is not None
            if resumable:
                session.conn = None
                conn.dropped = True
                with contextlib.suppress(Exception):
                    await conn.ws.close(code=code, message=b"fake drop")
            else:
                session.dead = True
                session.conn = None
                conn.dropped = True
                with contextlib.suppress(Exception):
                    await conn.ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
        self._notify()
