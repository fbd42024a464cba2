"""The Lua scripts RedisState runs: each touches one key, reads the server's clock, and is
atomic on the server (redis.py has the theory of operation)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

_BREAKER_LUA = """
-- KEYS[1]: the breaker's hash. ARGV: op, threshold, reset_ms, lease_ms, ttl_ms, generation,
-- probe, ok. Fields: s state (c/o/h), g generation, f failures, o opened at (ms), p probe
-- lease until (ms). Replies: {state, generation, granted, probe, open_ms_left, cooled (this
-- call moved open to half-open)} for acquire,
-- {old_state, state, generation, open_ms_left} for record, {state, generation, open_ms_left}
-- for state, {state, generation} for release.
local function int(x) return string.format('%.0f', x) end
local key, op = KEYS[1], ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', key, 's', 'g', 'f', 'o', 'p')
local s, g = h[1], tonumber(h[2])
local f, opened, lease_until = tonumber(h[3]) or 0, tonumber(h[4]) or 0, tonumber(h[5]) or 0
local reset = tonumber(ARGV[3])
local dirty, cooled = false, 0
if not s then
  if op == 'state' then return {'c', 0, 0} end
  s, g, f, dirty = 'c', now, 0, true
end
if s == 'o' and now - opened >= reset then
  if op == 'state' then return {'h', g, 0} end
  s, g, lease_until, dirty, cooled = 'h', g + 1, 0, true, 1
end
local reply
if op == 'acquire' then
  if s == 'c' then
    reply = {'c', g, 1, 0, 0}
  elseif s == 'h' then
    if lease_until <= now then
      g, lease_until, dirty = g + 1, now + tonumber(ARGV[4]), true
      reply = {'h', g, 1, 1, 0, cooled}
    else
      reply = {'h', g, 0, 0, 0}
    end
  else
    reply = {'o', g, 0, 0, opened + reset - now}
  end
elseif op == 'record' then
  local old = s
  if tonumber(ARGV[6]) == g then
    if ARGV[8] == '1' then
      if s == 'h' then
        s, g, f, lease_until, dirty = 'c', g + 1, 0, 0, true
      elseif f > 0 then
        f, dirty = 0, true
      end
    elseif s ~= 'o' then
      f, dirty = f + 1, true
      if s == 'h' or f >= tonumber(ARGV[2]) then
        s, g, f, opened, lease_until = 'o', g + 1, 0, now, 0
      end
    end
  end
  local left = 0
  if s == 'o' then left = opened + reset - now end
  reply = {old, s, g, left}
elseif op == 'release' then
  if ARGV[7] == '1' and s == 'h' and tonumber(ARGV[6]) == g and lease_until > 0 then
    lease_until, dirty = 0, true
  end
  reply = {s, g}
else
  local left = 0
  if s == 'o' then left = opened + reset - now end
  reply = {s, g, left}
end
if dirty then
  redis.call('HSET', key, 's', s, 'g', int(g), 'f', int(f), 'o', int(opened), 'p', int(lease_until))
  redis.call('PEXPIRE', key, ARGV[5])
end
return reply
"""

_SPEND_LUA = """
-- KEYS[1]: the bucket's hash. ARGV: limit, window_ms. Fields: w window index, n count.
-- Reply: 1 within the limit (counted), 0 over it.
local function int(x) return string.format('%.0f', x) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
local index = math.floor(now / window)
local h = redis.call('HMGET', KEYS[1], 'w', 'n')
local n = 0
if tonumber(h[1]) == index then n = tonumber(h[2]) or 0 end
if n >= tonumber(ARGV[1]) then return 0 end
if n == 0 then
  redis.call('HSET', KEYS[1], 'w', int(index), 'n', 1)
  redis.call('PEXPIREAT', KEYS[1], int((index + 1) * window))
else
  redis.call('HINCRBY', KEYS[1], 'n', 1)
end
return 1
"""


@dataclass(frozen=True)
class Script:
    body: str
    sha: str


def _script(body: str) -> Script:
    return Script(body, hashlib.sha1(body.encode()).hexdigest())


_REMEMBER_LUA = """
-- KEYS[1]: the namespace's sorted set (member: a key's digest, score: when it expires, in
-- server milliseconds). ARGV: member, ttl_ms, capacity. Reply: {1 first / 0 replay / -1 full,
-- entries held}. Kept while now <= expiry, like the in-process memory; one key per namespace,
-- so the namespace's capacity is counted exactly and expiry is on the server's clock. ZADD is
-- the first write, so a server at maxmemory (noeviction) refuses the script there: OOM.
local t = redis.call('TIME')
local now = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local held = redis.call('ZCOUNT', KEYS[1], now, '+inf')
if score and tonumber(score) >= tonumber(now) then return {0, held} end
if held >= tonumber(ARGV[3]) then return {-1, held} end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], string.format('%.0f', tonumber(now) + ttl), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return {1, held + 1}
"""

_COUNTER_LUA = """
-- KEYS[1]: a counter that never expires (the clearance revocation generation). ARGV: op
-- (read / bump). A missing counter (a new store, or one that lost its data) starts at the
-- server's clock in tenths of a second since 2024 (32 bits last until 2037), never at 0: a
-- generation is not reused, so clearances revoked before a loss stay revoked (they carry an
-- older generation) unless revocations outpaced ten a second.
local v = redis.call('GET', KEYS[1])
if not v then
  local t = redis.call('TIME')
  local tenths = (tonumber(t[1]) - 1704067200) * 10 + math.floor(tonumber(t[2]) / 100000)
  v = string.format('%.0f', tenths)
  redis.call('SET', KEYS[1], v)
end
if ARGV[1] == 'bump' then return redis.call('INCR', KEYS[1]) end
return tonumber(v)
"""

BREAKER = _script(_BREAKER_LUA)
SPEND = _script(_SPEND_LUA)
REMEMBER = _script(_REMEMBER_LUA)
COUNTER = _script(_COUNTER_LUA)

__all__ = ["BREAKER", "COUNTER", "REMEMBER", "SPEND", "Script"]
