/**
 * Lua scripts of the Redis presence store: every write is one atomic script. Keys are built
 * inside the scripts from the prefix (ARGV[1]), so this store needs a single Redis (no Cluster).
 *
 *   <p>presence:ch:<channel>   hash  socketId → state JSON
 *   <p>presence:sock:<sid>     hash  channel → "1", plus "@owner" → owning server's id
 *   <p>presence:owner:<uid>    set   socket ids a server owns (removed with its lease)
 *   <p>presence:owners         zset  server id → lease expiry (ms)
 *   <p>presence:pending        zset  socket id → leave deadline (ms), for dropped connections
 *   <p>presence:ghost:<sid>    hash  channel → state JSON of a reaped socket, for late recovery
 *   <p>presence:epoch          string  id of this generation of the data (see HEARTBEAT)
 *
 * Channel and socket hashes are owned by a lease (the reaper removes a dead server's members)
 * and also carry a long backstop TTL refreshed by their owner, so nothing lives forever even
 * if every server is gone.
 */

const KEYS = `
local p = ARGV[1]
local function ck(ch) return p .. 'presence:ch:' .. ch end
local function sk(sid) return p .. 'presence:sock:' .. sid end
local function ok(uid) return p .. 'presence:owner:' .. uid end
local function channels_of(sid)
  local out = {}
  for _, f in ipairs(redis.call('HKEYS', sk(sid))) do if f ~= '@owner' then out[#out + 1] = f end end
  return out
end
local function set_owner(sid, uid)
  local prev = redis.call('HGET', sk(sid), '@owner')
  if prev and prev ~= uid then redis.call('SREM', ok(prev), sid) end
  redis.call('HSET', sk(sid), '@owner', uid)
  redis.call('SADD', ok(uid), sid)
end
local function drop_socket(sid)
  local owner = redis.call('HGET', sk(sid), '@owner')
  if owner then redis.call('SREM', ok(owner), sid) end
  redis.call('DEL', sk(sid))
  redis.call('ZREM', p .. 'presence:pending', sid)
end
`;

/** ARGV: prefix, channel, sid, fields JSON, owner, maxMembers, maxChannels, keyTtlMs. Returns state JSON or "E:members"/"E:channels". */
export const ADD =
  KEYS +
  `
local ch, sid = ARGV[2], ARGV[3]
local cur = redis.call('HGET', ck(ch), sid)
if not cur then
  if redis.call('HLEN', ck(ch)) >= tonumber(ARGV[6]) then return 'E:members' end
  if #channels_of(sid) >= tonumber(ARGV[7]) then return 'E:channels' end
end
local state = cur and cjson.decode(cur) or {}
for k, v in pairs(cjson.decode(ARGV[4])) do state[k] = v end
state.socketId = sid
local out = cjson.encode(state)
redis.call('HSET', ck(ch), sid, out)
redis.call('HSET', sk(sid), ch, '1')
set_owner(sid, ARGV[5])
redis.call('PEXPIRE', ck(ch), ARGV[8])
redis.call('PEXPIRE', sk(sid), ARGV[8])
return out`;

/** ARGV: prefix, channel, sid, fields JSON. Returns the merged JSON, or false when not a member. */
export const UPDATE =
  KEYS +
  `
local ch, sid = ARGV[2], ARGV[3]
local cur = redis.call('HGET', ck(ch), sid)
if not cur then return false end
local state = cjson.decode(cur)
for k, v in pairs(cjson.decode(ARGV[4])) do state[k] = v end
state.socketId = sid
local out = cjson.encode(state)
redis.call('HSET', ck(ch), sid, out)
return out`;

/** ARGV: prefix, channel, sid. Returns 1 when removed. */
export const REMOVE =
  KEYS +
  `
local ch, sid = ARGV[2], ARGV[3]
if redis.call('HDEL', ck(ch), sid) == 0 then return 0 end
redis.call('HDEL', sk(sid), ch)
if #channels_of(sid) == 0 then drop_socket(sid) end
return 1`;

/**
 * ARGV: prefix, sid, owner. Returns the channels left. Only the server that owns the socket
 * removes it: one that lost the connection after it moved (recovered elsewhere) leaves it be.
 */
export const REMOVE_ALL =
  KEYS +
  `
local sid = ARGV[2]
if redis.call('HGET', sk(sid), '@owner') ~= ARGV[3] then return {} end
local left = channels_of(sid)
for _, ch in ipairs(left) do redis.call('HDEL', ck(ch), sid) end
drop_socket(sid)
return left`;

/**
 * ARGV: prefix, sid, deadline (ms), pendingTtlMs, owner. Only a socket with memberships, owned by
 * the server that reports the drop, is suspended: a late report from a server that lost the
 * connection after it moved (recovered elsewhere, which took the ownership) is ignored.
 */
export const SUSPEND =
  KEYS +
  `
local sid = ARGV[2]
if #channels_of(sid) == 0 then return 0 end
if redis.call('HGET', sk(sid), '@owner') ~= ARGV[5] then return 0 end
local key = p .. 'presence:pending'
local cur = redis.call('ZSCORE', key, sid)
if not cur or tonumber(cur) > tonumber(ARGV[3]) then redis.call('ZADD', key, ARGV[3], sid) end
redis.call('PEXPIRE', key, ARGV[4])
return 1`;

/**
 * ARGV: prefix, sid, owner, maxMembers, maxChannels, keyTtlMs. Cancels a pending leave and moves
 * the memberships to `owner`; after a reap, re-enters from the ghost. Returns [channel, state, ...] re-entered.
 */
export const RESUME =
  KEYS +
  `
local sid, uid = ARGV[2], ARGV[3]
redis.call('ZREM', p .. 'presence:pending', sid)
if #channels_of(sid) > 0 then set_owner(sid, uid) end
local gk = p .. 'presence:ghost:' .. sid
local ghost = redis.call('HGETALL', gk)
redis.call('DEL', gk)
local back = {}
for i = 1, #ghost, 2 do
  local ch, state = ghost[i], ghost[i + 1]
  if not redis.call('HGET', ck(ch), sid) and redis.call('HLEN', ck(ch)) < tonumber(ARGV[4]) and #channels_of(sid) < tonumber(ARGV[5]) then
    redis.call('HSET', ck(ch), sid, state)
    redis.call('HSET', sk(sid), ch, '1')
    set_owner(sid, uid)
    redis.call('PEXPIRE', ck(ch), ARGV[6])
    redis.call('PEXPIRE', sk(sid), ARGV[6])
    back[#back + 1] = ch
    back[#back + 1] = state
  end
end
return back`;

/**
 * ARGV: prefix, now (ms), ghostTtlMs, limit. Removes the members of servers whose lease expired
 * and sockets past their leave deadline, keeping ghosts; returns [channel, sid, ...] removed.
 * Atomic, so of several servers reaping at once exactly one announces each departure.
 */
export const REAP =
  KEYS +
  `
local now, ghostTtl, limit = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local removed = {}
local function reap_socket(sid)
  local gk = p .. 'presence:ghost:' .. sid
  for _, ch in ipairs(channels_of(sid)) do
    local state = redis.call('HGET', ck(ch), sid)
    if state then
      redis.call('HDEL', ck(ch), sid)
      redis.call('HSET', gk, ch, state)
      removed[#removed + 1] = ch
      removed[#removed + 1] = sid
    end
  end
  if redis.call('EXISTS', gk) == 1 then redis.call('PEXPIRE', gk, ghostTtl) end
  drop_socket(sid)
end
local owners = p .. 'presence:owners'
for _, uid in ipairs(redis.call('ZRANGEBYSCORE', owners, '-inf', now, 'LIMIT', 0, 10)) do
  redis.call('ZREM', owners, uid)
  for _, sid in ipairs(redis.call('SMEMBERS', ok(uid))) do reap_socket(sid) end
  redis.call('DEL', ok(uid))
end
local pending = p .. 'presence:pending'
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', pending, '-inf', now, 'LIMIT', 0, limit)) do
  reap_socket(sid)
  redis.call('ZREM', pending, sid)
end
return removed`;

/**
 * ARGV: prefix, uid, leaseUntil (ms), registryTtlMs, keyTtlMs, refreshKeys ("1"/"0"), epoch.
 * Renews this server's lease; now and then also the backstop TTL of the keys it owns. Returns the
 * presence data's epoch: a random id set by the first server that finds none, so a Redis that
 * lost its data (restarted empty, failed over to a fresh node) shows up as a new epoch.
 */
export const HEARTBEAT =
  KEYS +
  `
local uid = ARGV[2]
local owners = p .. 'presence:owners'
local ek = p .. 'presence:epoch'
local epoch = redis.call('GET', ek)
if not epoch then
  epoch = ARGV[7]
  redis.call('SET', ek, epoch)
end
redis.call('PEXPIRE', ek, ARGV[4])
redis.call('ZADD', owners, ARGV[3], uid)
redis.call('PEXPIRE', owners, ARGV[4])
redis.call('PEXPIRE', ok(uid), ARGV[5])
if ARGV[6] == '1' then
  for _, sid in ipairs(redis.call('SMEMBERS', ok(uid))) do
    redis.call('PEXPIRE', sk(sid), ARGV[5])
    for _, ch in ipairs(channels_of(sid)) do redis.call('PEXPIRE', ck(ch), ARGV[5]) end
  end
end
return epoch`;

/** ARGV: prefix, uid, expiry (ms). Brings a server's lease end forward (never back). */
export const END_LEASE =
  KEYS +
  `
redis.call('ZADD', p .. 'presence:owners', 'XX', 'LT', ARGV[3], ARGV[2])
return 1`;
