"""The gateway websocket: HELLO, IDENTIFY and RESUME, heartbeats, dispatch, replay after a drop.

Gateway control
    ``await wait_until_ready(timeout=10)`` (a live session got READY + GUILD_CREATE or RESUMED);
    ``await drop_gateway(code=4000, resumable=True, shard=None)`` -- events dispatched while the client is away
    are buffered and replayed on RESUME; ``resumable=False`` invalidates the session (op 9) and
    discord.py re-identifies after its own fixed 5 s ``before_identify`` sleep;
    ``identify_count``, ``resume_count``, ``presence_updates``.
    Gateway frames are plain-text JSON (discord.py only inflates binary frames); op 8
    REQUEST_GUILD_MEMBERS is answered with one GUILD_MEMBERS_CHUNK.
Shards
    A bot may hold several sessions at once, each IDENTIFYing with ``shard: [shard_id, shard_count]``
    (none means ``[0, 1]``); a shard id outside ``0 <= id < count`` is closed with 4010 Invalid
    shard, and a shard that would hold more than ``guilds_per_shard_limit`` guilds (2,500 by
    default) with 4011 Sharding required.  Each shard's READY carries ``shard`` and lists only its
    guilds, ``(guild_id >> 22) % shard_count == shard_id``, each followed by its GUILD_CREATE.  Every
    event of a guild and every interaction in one goes to the sessions of that guild's shard (an
    interaction to the latest one); DMs and other events without a guild go to shard 0 only.
    ``GET /gateway/bot`` recommends ``recommended_shards`` (1 by default) and reports
    ``max_concurrency`` (1), which the fake does not enforce.  Which shard got what:
    ``gateway_events`` (every dispatch as a :class:`GatewayEvent`: ``name``, ``data``,
    ``shard_id``, ``shard_count``, ``session_id``, ``seq``; RESUMED included), ``events_to(shard_id,
    name=None)``, ``FakeInteraction.shard_id``; ``shard_of(guild_id, shard_count)``;
    ``drop_gateway(shard=1)`` drops that shard's sockets only.

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

from loopback.fake_discord.wire import EVENT_BUFFER_LIMIT, THREAD_TYPES, Intents, as_int, shard_of


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
    shard_id: int = 0  # an IDENTIFY without ``shard`` is shard 0 of 1
    shard_count: int = 1
    ready: bool = False
    dead: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def covers(self, guild_id: int | None) -> bool:
        """Whether Discord sends this session the events of ``guild_id`` (None: events without a guild)."""
        return shard_of(guild_id, self.shard_count) == self.shard_id

    @property
    def live(self) -> bool:
        return (
            not self.dead
            and self.ready
            and self.conn is not None
            and not self.conn.ws.closed
            and not self.conn.dropped
        )


@dataclass(frozen=True)
class GatewayEvent:
    """One dispatch (op 0) the fake sent: the event, its data and the shard whose session got it."""

    name: str
    data: Any
    shard_id: int
    shard_count: int
    session_id: str
    seq: int


class Gateway:
    """The gateway of :class:`~loopback.fake_discord.FakeDiscord`: sessions, shards, dispatch and replay."""

    def _init_gateway(
        self, *, recommended_shards: int, max_concurrency: int, guilds_per_shard_limit: int
    ) -> None:
        self.recommended_shards = recommended_shards
        self.max_concurrency = max_concurrency
        self.guilds_per_shard_limit = guilds_per_shard_limit
        self.presence_updates: list[dict[str, Any]] = []
        self.gateway_events: list[GatewayEvent] = []
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

    def events_to(self, shard_id: int, name: str | None = None) -> list[GatewayEvent]:
        """The events dispatched to sessions of shard ``shard_id`` (only those called ``name``), in order."""
        return [e for e in self.gateway_events if e.shard_id == shard_id and name in (None, e.name)]

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
        shard = data.get("shard", [0, 1])
        if not (
            isinstance(shard, list)
            and len(shard) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) for n in shard)
            and 0 <= shard[0] < shard[1]
        ):
            await conn.ws.close(code=4010, message=b"Invalid shard")
            return
        shard_id, shard_count = shard
        guild_ids = [g for g in self.guilds if shard_of(g, shard_count) == shard_id]
        if len(guild_ids) > self.guilds_per_shard_limit:
            await conn.ws.close(code=4011, message=b"Sharding required")
            return
        session = _Session(
            session_id=secrets.token_hex(16),
            intents=intents,
            conn=conn,
            shard_id=shard_id,
            shard_count=shard_count,
        )
        conn.session = session
        self._sessions[session.session_id] = session
        self.identify_count += 1
        application = {"id": str(self.application_id), "flags": self._application_flags()}
        ready = {
            "v": 10,
            "user": {**self.bot_user, "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(g), "unavailable": True} for g in guild_ids],
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
            ready["shard"] = [shard_id, shard_count]
        await self._send_event(session, "READY", ready)
        for guild_id in guild_ids:
            await self._send_event(session, "GUILD_CREATE", self._guild_create_payload(guild_id))
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
            self._record(session, "RESUMED", {})
            self.resume_count += 1
            conn.session = session
            session.conn = conn
        self._notify()

    async def _request_members(self, session: _Session, data: dict[str, Any]) -> None:
        query = str(data.get("query") or "")
        wanted = {int(u) for u in data.get("user_ids") or []}
        limit = int(data.get("limit") or 0)
        guild = self.guilds.get(as_int(data.get("guild_id")) or 0) or self._guild()
        members = [
            self._member_payload(uid, guild_id=guild.id)
            for uid, m in guild.members.items()
            if (not wanted or uid in wanted) and m["user"]["username"].startswith(query)
        ]
        if limit:
            members = members[:limit]
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
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

    def _guild_create_payload(self, guild_id: int | None = None) -> dict[str, Any]:
        """A GUILD_CREATE of a guild the bot is in (the first by default)."""
        guild = self._guild(guild_id)
        channels = [c for c in self.channels.values() if self._guild_id_of(c) == guild.id]
        active_threads = [
            copy.deepcopy(c)
            for c in channels
            if c["type"] in THREAD_TYPES and not c["thread_metadata"]["archived"]
        ]
        return {
            "id": str(guild.id),
            "name": guild.name,
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
            "roles": copy.deepcopy(list(guild.roles.values())),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": str(guild.channel_id),
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
            "joined_at": guild.joined_at,
            "large": False,
            "unavailable": False,
            "lazy": True,
            "member_count": len(guild.members),
            "voice_states": [],
            "members": [self._member_payload(uid, guild_id=guild.id) for uid in guild.members],
            "channels": [copy.deepcopy(c) for c in channels if c["type"] not in THREAD_TYPES],
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
            self._record(session, event, data)
            if len(session.buffer) > EVENT_BUFFER_LIMIT:
                del session.buffer[: len(session.buffer) - EVENT_BUFFER_LIMIT]
            conn = session.conn
            if conn is not None and not conn.dropped and not conn.ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.ws.send_str(frame)

    def _record(self, session: _Session, event: str, data: Any) -> None:
        self.gateway_events.append(
            GatewayEvent(event, data, session.shard_id, session.shard_count, session.session_id, session.seq)
        )

    @staticmethod
    def _event_guild(event: str, data: Any) -> int | None:
        """The guild an event belongs to, which decides its shard (None: shard 0 only)."""
        if not isinstance(data, dict):
            return None
        if event in ("GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE"):
            return as_int(data.get("id"))
        return as_int(data.get("guild_id"))

    def _event_allowed(self, session: _Session, event: str, data: Any) -> bool:
        if event.startswith("MESSAGE_"):
            in_dm = "guild_id" not in data
            return bool(session.intents & (Intents.DIRECT_MESSAGES if in_dm else Intents.GUILD_MESSAGES))
        if event == "THREAD_MEMBERS_UPDATE":
            # Others joining or leaving a thread only with the members intent; the bot's own always.
            bot_id = str(self._bot_id())
            about_bot = bot_id in data.get("removed_member_ids", []) or any(
                m.get("user_id") == bot_id for m in data.get("added_members", [])
            )
            return bool(session.intents & Intents.GUILDS) and (
                about_bot or bool(session.intents & Intents.GUILD_MEMBERS)
            )
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
        """Dispatch an event to every session of its shard that has not ended (buffered while disconnected)."""
        guild_id = self._event_guild(event, data)
        for session in list(self._sessions.values()):
            if session.dead or not session.ready or not session.covers(guild_id):
                continue
            if not self._event_allowed(session, event, data):
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

    def _interaction_session(self, guild_id: int | None) -> _Session:
        """The session an interaction in ``guild_id`` goes to: the latest one of its shard."""
        for session in reversed(list(self._sessions.values())):
            if not session.dead and session.ready and session.covers(guild_id):
                return session
        if any(not s.dead and s.ready for s in self._sessions.values()):
            raise RuntimeError(f"no connected session holds the shard of guild {guild_id} (DMs: shard 0)")
        raise RuntimeError("no bot is connected to the fake gateway (await fake.wait_until_ready() first)")

    async def drop_gateway(
        self, *, code: int = 4000, resumable: bool = True, shard: int | None = None
    ) -> None:
        """Cut every live gateway socket (only those of shard ``shard`` if given) so the client reconnects.

        With ``resumable=True`` (default) the socket is closed with ``code`` (4000, "unknown error",
        which discord.py treats as resumable) and the session keeps buffering events for RESUME.
        With ``resumable=False`` the session is invalidated (op 9, d=false) so the client
        re-identifies and gets a fresh READY + GUILD_CREATE -- after discord.py's built-in 5 s
        ``before_identify`` sleep for non-initial identifies, so budget for it.
        """
        targets = [
            s
            for s in self._sessions.values()
            if not s.dead and s.conn is not None and shard in (None, s.shard_id)
        ]
        if not targets:
            raise RuntimeError(
                "no connected gateway session to drop" + (f" on shard {shard}" if shard is not None else "")
            )
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
