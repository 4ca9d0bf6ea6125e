//! The Redis Streams backend, for several callmux hosts and any number of dispatchers.
//!
//! Keys (all under the hash tag `{prefix}`, so they live in one Redis Cluster slot and the
//! Lua scripts below may touch any of them):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{p}:ev:<id>` | hash | one live event (fields `id call seq url method body kind created attempts last_error sid`) |
//! | `{p}:call:<call_uuid>` | list | the call's live event ids in `seq` order; index 0 is the head |
//! | `{p}:ready` | stream + consumer group | one entry per call head that may be delivered |
//! | `{p}:retry` | sorted set | heads waiting for a retry, scored by `not_before` (ms) |
//! | `{p}:dead` | stream | dead letters (the whole event plus the reason) |
//! | `{p}:deadidx` | hash | event id → dead stream entry id, for requeue by id |
//! | `{p}:seq`, `{p}:live` | counters | next `seq`; number of live events |
//!
//! Per-call order: only a call's head is ever in `ready` (or `retry`). `XREADGROUP` hands
//! it to one consumer, whose pending-entries list is its lease; `XAUTOCLAIM` with
//! `min-idle-time = lease` hands it to another consumer only when the first one stopped
//! acknowledging. The next event of the call is added to `ready` by the same Lua script
//! that acks or dead-letters the head, so two dispatchers never hold two events of one
//! call. Every mutation is one Lua script, so a crash between steps cannot leave a call
//! without a head or with two.
//!
//! Leases are measured by the Redis server's clock (stream idle time); retry times are the
//! `not_before` the dispatcher passes, by its clock. Durability is Redis's: with
//! `appendonly yes` and `appendfsync always` an acknowledged enqueue survives a Redis
//! crash; with `everysec`, up to a second can be lost.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ::redis::{Client, Connection, Script, Value};

use super::{
    from_unix_ms, lease_ms, to_unix_ms, EventId, EventQueue, HttpMethod, NewEvent, QueueDepth,
    QueueError, QueuedEvent,
};

/// How long connecting and each command may take before the call fails (transiently).
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Most events one `claim` or `list_dead` returns (larger limits are cut to this, which
/// keeps each Lua script short; Redis runs nothing else while a script runs).
pub const MAX_CLAIM: usize = 1000;

/// Lua helpers shared by the scripts. `add_live` stores an event and makes it `ready` if
/// its call had no live event; `remove_live` deletes a live event and, if it was the head,
/// makes the next one `ready`.
const LUA_COMMON: &str = r"
local base = ARGV[1]
local group = ARGV[2]
local ready = KEYS[1]

local function make_ready(id)
  local sid = redis.call('XADD', ready, '*', 'id', id)
  redis.call('HSET', base .. ':ev:' .. id, 'sid', sid)
end

local function add_live(id, call, url, method, body, kind, created, attempts, last_error)
  local ek = base .. ':ev:' .. id
  if redis.call('EXISTS', ek) == 1 then
    return tonumber(redis.call('HGET', ek, 'seq'))
  end
  local seq = redis.call('INCR', base .. ':seq')
  redis.call('HSET', ek, 'id', id, 'call', call, 'url', url, 'method', method, 'body', body,
             'kind', kind, 'seq', seq, 'created', created, 'attempts', attempts)
  if last_error then redis.call('HSET', ek, 'last_error', last_error) end
  redis.call('INCR', base .. ':live')
  if redis.call('RPUSH', base .. ':call:' .. call, id) == 1 then make_ready(id) end
  return seq
end

local function release(ek)
  local sid = redis.call('HGET', ek, 'sid')
  if sid then
    redis.call('XACK', ready, group, sid)
    redis.call('XDEL', ready, sid)
    redis.call('HDEL', ek, 'sid')
  end
end

local function remove_live(id)
  local ek = base .. ':ev:' .. id
  local call = redis.call('HGET', ek, 'call')
  if not call then return false end
  release(ek)
  redis.call('ZREM', base .. ':retry', id)
  redis.call('DEL', ek)
  redis.call('DECR', base .. ':live')
  local ck = base .. ':call:' .. call
  local was_head = redis.call('LINDEX', ck, 0) == id
  redis.call('LREM', ck, 1, id)
  if was_head then
    while true do
      local nxt = redis.call('LINDEX', ck, 0)
      if not nxt then break end
      if redis.call('EXISTS', base .. ':ev:' .. nxt) == 1 then make_ready(nxt) break end
      redis.call('LPOP', ck)
    end
  end
  return true
end

local FIELDS = {'id', 'call', 'seq', 'url', 'method', 'body', 'kind', 'created', 'attempts',
                'last_error'}

local function flat(h)
  local out = {}
  for i = 1, 10 do
    out[i] = h[i] or ''
  end
  out[11] = h[10] and '1' or '0'
  return out
end
";

/// ARGV: base, group, created_ms, then (id, call, url, method, body, kind) per event.
const LUA_ENQUEUE: &str = r"
local out = {}
local i = 4
while i + 5 <= #ARGV do
  out[#out + 1] = add_live(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
                           ARGV[i + 5], ARGV[3], 0, false)
  i = i + 6
end
return out
";

/// ARGV: base, group, consumer, now_ms, limit, lease_ms.
const LUA_CLAIM: &str = r"
local consumer = ARGV[3]
local now = tonumber(ARGV[4])
local limit = tonumber(ARGV[5])
local lease = ARGV[6]
local due = redis.call('ZRANGEBYSCORE', base .. ':retry', '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(due) do
  redis.call('ZREM', base .. ':retry', id)
  if redis.call('EXISTS', base .. ':ev:' .. id) == 1 then make_ready(id) end
end
local out = {}
local function take(entries)
  if type(entries) ~= 'table' then return end
  for _, e in ipairs(entries) do
    if type(e) == 'table' then
      local sid = e[1]
      local fields = e[2]
      local id = false
      if type(fields) == 'table' then
        for j = 1, #fields, 2 do
          if fields[j] == 'id' then id = fields[j + 1] end
        end
      end
      local h = false
      if id then
        local ek = base .. ':ev:' .. id
        if redis.call('HGET', ek, 'sid') == sid then
          h = redis.call('HMGET', ek, unpack(FIELDS))
        end
      end
      if h and h[1] then
        out[#out + 1] = flat(h)
      else
        redis.call('XACK', ready, group, sid)
        redis.call('XDEL', ready, sid)
      end
    end
  end
end
local ac = redis.call('XAUTOCLAIM', ready, group, consumer, lease, '0-0', 'COUNT', limit)
take(ac[2])
if #out < limit then
  local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', limit - #out,
                      'STREAMS', ready, '>')
  if type(r) == 'table' and type(r[1]) == 'table' then take(r[1][2]) end
end
return out
";

/// ARGV: base, group, id.
const LUA_ACK: &str = r"
if remove_live(ARGV[3]) then return 1 end
return 0
";

/// ARGV: base, group, id, not_before_ms, error.
const LUA_RETRY: &str = r"
local id = ARGV[3]
local ek = base .. ':ev:' .. id
local call = redis.call('HGET', ek, 'call')
if not call then return 0 end
release(ek)
redis.call('HINCRBY', ek, 'attempts', 1)
redis.call('HSET', ek, 'last_error', ARGV[5])
if redis.call('LINDEX', base .. ':call:' .. call, 0) == id then
  redis.call('ZADD', base .. ':retry', ARGV[4], id)
end
return 1
";

/// ARGV: base, group, id, reason.
const LUA_DEAD: &str = r"
local id = ARGV[3]
local ek = base .. ':ev:' .. id
local h = redis.call('HMGET', ek, unpack(FIELDS))
if not h[1] then return 0 end
local attempts = (tonumber(h[9]) or 0) + 1
local dsid = redis.call('XADD', base .. ':dead', '*', 'id', h[1], 'call', h[2], 'seq', h[3],
                        'url', h[4], 'method', h[5], 'body', h[6], 'kind', h[7],
                        'created', h[8], 'attempts', attempts, 'last_error', ARGV[4])
redis.call('HSET', base .. ':deadidx', id, dsid)
remove_live(id)
return 1
";

/// ARGV: base, group, limit.
const LUA_LIST_DEAD: &str = r"
local out = {}
for _, e in ipairs(redis.call('XRANGE', base .. ':dead', '-', '+', 'COUNT', ARGV[3])) do
  local m = {}
  local f = e[2]
  for j = 1, #f, 2 do m[f[j]] = f[j + 1] end
  local h = {}
  for i, name in ipairs(FIELDS) do h[i] = m[name] or false end
  out[#out + 1] = flat(h)
end
return out
";

/// ARGV: base, group, now_ms, id ('' = all), max.
const LUA_REQUEUE: &str = r"
local dead = base .. ':dead'
local entries
if ARGV[4] ~= '' then
  local dsid = redis.call('HGET', base .. ':deadidx', ARGV[4])
  if not dsid then return 0 end
  entries = redis.call('XRANGE', dead, dsid, dsid)
else
  entries = redis.call('XRANGE', dead, '-', '+', 'COUNT', ARGV[5])
end
local n = 0
for _, e in ipairs(entries) do
  local m = {}
  local f = e[2]
  for j = 1, #f, 2 do m[f[j]] = f[j + 1] end
  if m['id'] and m['call'] then
    add_live(m['id'], m['call'], m['url'] or '', m['method'] or 'POST', m['body'] or '',
             m['kind'] or '', ARGV[3], 0, m['last_error'] or false)
    redis.call('HDEL', base .. ':deadidx', m['id'])
    n = n + 1
  end
  redis.call('XDEL', dead, e[1])
end
return n
";

/// ARGV: base, group.
const LUA_DEPTH: &str = r"
local live = tonumber(redis.call('GET', base .. ':live') or '0') or 0
local pend = redis.call('XPENDING', ready, group)
local in_flight = tonumber(pend[1]) or 0
if in_flight > live then in_flight = live end
return {live - in_flight, in_flight, redis.call('XLEN', base .. ':dead')}
";

struct Scripts {
    enqueue: Script,
    claim: Script,
    ack: Script,
    retry: Script,
    dead: Script,
    list_dead: Script,
    requeue: Script,
    depth: Script,
}

impl Scripts {
    fn new() -> Self {
        let s = |body: &str| Script::new(&format!("{LUA_COMMON}\n{body}"));
        Self {
            enqueue: s(LUA_ENQUEUE),
            claim: s(LUA_CLAIM),
            ack: s(LUA_ACK),
            retry: s(LUA_RETRY),
            dead: s(LUA_DEAD),
            list_dead: s(LUA_LIST_DEAD),
            requeue: s(LUA_REQUEUE),
            depth: s(LUA_DEPTH),
        }
    }
}

/// The Redis Streams backend. Reconnects on the next call after a connection error.
pub struct RedisQueue {
    client: Client,
    con: Option<Connection>,
    base: String,
    group: String,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("base", &self.base)
            .field("group", &self.group)
            .field("connected", &self.con.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisQueue {
    /// Connect, and create the consumer group (reading from the start of the stream, so
    /// events enqueued before the first dispatcher started are not skipped).
    pub fn open(url: &str, prefix: &str, group: &str) -> Result<Self, QueueError> {
        let client = Client::open(url)?;
        let mut q = Self {
            client,
            con: None,
            base: format!("{{{prefix}}}"),
            group: group.to_owned(),
            scripts: Arc::new(Scripts::new()),
        };
        q.create_group()?;
        Ok(q)
    }

    fn ready_key(&self) -> String {
        format!("{}:ready", self.base)
    }

    fn con(&mut self) -> Result<&mut Connection, QueueError> {
        if self.con.is_none() {
            let con = self.client.get_connection_with_timeout(IO_TIMEOUT)?;
            con.set_read_timeout(Some(IO_TIMEOUT))?;
            con.set_write_timeout(Some(IO_TIMEOUT))?;
            self.con = Some(con);
        }
        match self.con.as_mut() {
            Some(con) => Ok(con),
            None => Err(QueueError::Corrupt("redis connection vanished".into())),
        }
    }

    /// Record an error; drop the connection if it is no longer usable.
    fn fail(&mut self, e: ::redis::RedisError) -> QueueError {
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.is_unrecoverable_error()
        {
            self.con = None;
        }
        QueueError::Redis(e)
    }

    /// Run one script with KEYS[1] = ready and ARGV = base, group, then `args`.
    fn run<T: ::redis::FromRedisValue>(
        &mut self,
        which: fn(&Scripts) -> &Script,
        args: &[ScriptArg<'_>],
    ) -> Result<T, QueueError> {
        let scripts = Arc::clone(&self.scripts);
        let mut inv = which(&scripts).key(self.ready_key());
        inv.arg(&self.base).arg(&self.group);
        for a in args {
            match a {
                ScriptArg::Str(s) => inv.arg(*s),
                ScriptArg::Bytes(b) => inv.arg(*b),
                ScriptArg::Int(i) => inv.arg(*i),
            };
        }
        let first = inv.invoke::<T>(self.con()?);
        match first {
            Ok(v) => Ok(v),
            // The stream or group vanished (Redis restarted without persistence, or the
            // keys were flushed): recreate the group once and run again.
            Err(e) if e.code() == Some("NOGROUP") => {
                self.create_group()?;
                let again = inv.invoke::<T>(self.con()?);
                again.map_err(|e| self.fail(e))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn create_group(&mut self) -> Result<(), QueueError> {
        let ready = self.ready_key();
        let group = self.group.clone();
        let created: Result<Value, _> = ::redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&ready)
            .arg(&group)
            .arg("0")
            .arg("MKSTREAM")
            .query(self.con()?);
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }
}

enum ScriptArg<'a> {
    Str(&'a str),
    Bytes(&'a [u8]),
    Int(i64),
}

fn text(v: &[u8], what: &str) -> Result<String, QueueError> {
    String::from_utf8(v.to_vec()).map_err(|_| QueueError::Corrupt(format!("{what} is not UTF-8")))
}

fn number<T: std::str::FromStr>(v: &[u8], what: &str) -> Result<T, QueueError> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| QueueError::Corrupt(format!("{what} is not a number")))
}

/// Parse the 11-field rows the scripts return (see `flat` in [`LUA_COMMON`]).
fn parse_rows(rows: Vec<Vec<Vec<u8>>>) -> Result<Vec<QueuedEvent>, QueueError> {
    rows.into_iter()
        .map(|row| {
            let [id, call, seq, url, method, body, kind, created, attempts, last_error, has_error] =
                <[Vec<u8>; 11]>::try_from(row).map_err(|r| {
                    QueueError::Corrupt(format!("event row with {} fields, want 11", r.len()))
                })?;
            let id = text(&id, "id")?;
            if id.is_empty() {
                return Err(QueueError::Corrupt("event without id".into()));
            }
            Ok(QueuedEvent {
                id: EventId::from_string(id),
                seq: number(&seq, "seq")?,
                call_uuid: text(&call, "call_uuid")?,
                url: text(&url, "url")?,
                method: text(&method, "method")?.parse::<HttpMethod>()?,
                body,
                kind: text(&kind, "kind")?,
                created_at: from_unix_ms(number(&created, "created")?),
                attempts: number(&attempts, "attempts")?,
                last_error: if has_error == b"1" {
                    Some(text(&last_error, "last_error")?)
                } else {
                    None
                },
            })
        })
        .collect()
}

impl EventQueue for RedisQueue {
    fn enqueue(&mut self, ev: NewEvent, now: SystemTime) -> Result<EventId, QueueError> {
        let mut ids = self.enqueue_batch(vec![ev], now)?;
        ids.pop()
            .ok_or_else(|| QueueError::Corrupt("enqueue returned no id".into()))
    }

    fn enqueue_batch(
        &mut self,
        evs: Vec<NewEvent>,
        now: SystemTime,
    ) -> Result<Vec<EventId>, QueueError> {
        if evs.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<EventId> = evs.iter().map(|_| EventId::random()).collect();
        let mut args = vec![ScriptArg::Int(to_unix_ms(now))];
        for (ev, id) in evs.iter().zip(&ids) {
            args.extend([
                ScriptArg::Str(id.as_str()),
                ScriptArg::Str(&ev.call_uuid),
                ScriptArg::Str(&ev.url),
                ScriptArg::Str(ev.method.as_str()),
                ScriptArg::Bytes(&ev.body),
                ScriptArg::Str(&ev.kind),
            ]);
        }
        let seqs: Vec<u64> = self.run(|s| &s.enqueue, &args)?;
        if seqs.len() != ids.len() {
            return Err(QueueError::Corrupt(format!(
                "enqueue stored {} of {} events",
                seqs.len(),
                ids.len()
            )));
        }
        Ok(ids)
    }

    fn claim(
        &mut self,
        consumer: &str,
        now: SystemTime,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<QueuedEvent>, QueueError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<Vec<Vec<u8>>> = self.run(
            |s| &s.claim,
            &[
                ScriptArg::Str(consumer),
                ScriptArg::Int(to_unix_ms(now)),
                ScriptArg::Int(i64::try_from(limit.min(MAX_CLAIM)).unwrap_or(1)),
                ScriptArg::Int(lease_ms(lease)),
            ],
        )?;
        parse_rows(rows)
    }

    fn ack(&mut self, id: &EventId) -> Result<(), QueueError> {
        let _: i64 = self.run(|s| &s.ack, &[ScriptArg::Str(id.as_str())])?;
        Ok(())
    }

    fn retry_later(
        &mut self,
        id: &EventId,
        not_before: SystemTime,
        error: &str,
    ) -> Result<(), QueueError> {
        let n: i64 = self.run(
            |s| &s.retry,
            &[
                ScriptArg::Str(id.as_str()),
                ScriptArg::Int(to_unix_ms(not_before)),
                ScriptArg::Str(error),
            ],
        )?;
        if n == 0 {
            return Err(QueueError::NotFound(id.clone()));
        }
        Ok(())
    }

    fn dead_letter(&mut self, id: &EventId, reason: &str) -> Result<(), QueueError> {
        let n: i64 = self.run(
            |s| &s.dead,
            &[ScriptArg::Str(id.as_str()), ScriptArg::Str(reason)],
        )?;
        if n == 0 {
            return Err(QueueError::NotFound(id.clone()));
        }
        Ok(())
    }

    fn list_dead(&mut self, limit: usize) -> Result<Vec<QueuedEvent>, QueueError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<Vec<Vec<u8>>> = self.run(
            |s| &s.list_dead,
            &[ScriptArg::Int(
                i64::try_from(limit.min(MAX_CLAIM)).unwrap_or(1),
            )],
        )?;
        parse_rows(rows)
    }

    fn requeue_dead_at(
        &mut self,
        id: Option<&EventId>,
        now: SystemTime,
    ) -> Result<usize, QueueError> {
        const CHUNK: i64 = 500;
        let now_ms = to_unix_ms(now);
        let one = id.map(EventId::as_str);
        let mut total = 0_usize;
        loop {
            let n: usize = self.run(
                |s| &s.requeue,
                &[
                    ScriptArg::Int(now_ms),
                    ScriptArg::Str(one.unwrap_or("")),
                    ScriptArg::Int(CHUNK),
                ],
            )?;
            total += n;
            if one.is_some() || n == 0 {
                return Ok(total);
            }
        }
    }

    fn depth(&mut self) -> Result<QueueDepth, QueueError> {
        let (pending, in_flight, dead): (i64, i64, i64) = self.run(|s| &s.depth, &[])?;
        let u = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(QueueDepth {
            pending: u(pending),
            in_flight: u(in_flight),
            dead: u(dead),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fields: &[&[u8]]) -> Vec<Vec<u8>> {
        fields.iter().map(|f| f.to_vec()).collect()
    }

    #[test]
    fn parses_a_row() {
        let rows = vec![row(&[
            b"id1",
            b"call",
            b"7",
            b"http://x",
            b"GET",
            b"\x00\xff",
            b"k",
            b"1000",
            b"2",
            b"boom",
            b"1",
        ])];
        let ev = parse_rows(rows).unwrap().remove(0);
        assert_eq!(ev.id.as_str(), "id1");
        assert_eq!(ev.seq, 7);
        assert_eq!(ev.method, HttpMethod::Get);
        assert_eq!(ev.body, b"\x00\xff");
        assert_eq!(ev.created_at, from_unix_ms(1000));
        assert_eq!(ev.attempts, 2);
        assert_eq!(ev.last_error.as_deref(), Some("boom"));
    }

    #[test]
    fn malformed_rows_are_errors() {
        let good: [&[u8]; 11] = [
            b"id1",
            b"call",
            b"7",
            b"http://x",
            b"POST",
            b"{}",
            b"k",
            b"1000",
            b"0",
            b"",
            b"0",
        ];
        assert!(parse_rows(vec![row(&good)]).is_ok());
        assert!(parse_rows(vec![row(&good[..10])]).is_err());
        for (i, bad) in [
            (0, &b""[..]),
            (2, b"x"),
            (2, b"-1"),
            (4, b"PUT"),
            (7, b"soon"),
            (8, b"-3"),
            (1, b"\xff"),
        ] {
            let mut r = good;
            r[i] = bad;
            assert!(parse_rows(vec![row(&r)]).is_err(), "field {i} = {bad:?}");
        }
    }
}
