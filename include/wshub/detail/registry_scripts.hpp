// wshub/detail/registry_scripts.hpp: the Lua script of the connection registry's cleanup.
//
// Removing a dead instance's entries must be atomic with the check that it is
// dead: as separate commands, an instance whose link came back between the
// check and the deletes (after an outage longer than the TTL) would see its
// fresh entries deleted under it. A script runs in Redis as one step.
//
//   EVAL <script> 0 <prefix> <instance> <force>
//
// force "0": do nothing (nil reply) while <p>instance:<instance> exists.
// force "1": clean even so; an instance starting up uses it on its own id, to
// remove what an earlier run of the same id left (its entries have ids no
// live connection has).
// Reply: {connections removed, 1 if a heartbeat existed else 0,
//         {channel, member, channel, member, ...} of the presence members the
//         script removed (only those: whoever removed one announces its leave)}.
//
// Keys are built inside the script from the prefix, so it is not for Redis
// Cluster (neither is the rest of the layout: one Redis per deployment).
// Its run time grows with the dead instance's entries: 65 ms for 10,000
// connections with one presence entry each (Redis 7.0, SLOWLOG), during which
// Redis serves nothing else.
//
// Thread safety: constants.
#pragma once

#include <string_view>

namespace wshub::detail::registry_scripts {

inline constexpr std::string_view clean_instance = R"lua(
local p, id, force = ARGV[1], ARGV[2], ARGV[3]
local beat = p .. 'instance:' .. id
local had_beat = redis.call('EXISTS', beat)
if force ~= '1' and had_beat == 1 then return false end
local conns_key = beat .. ':conns'
local presence_key = beat .. ':presence'
local conns = redis.call('HGETALL', conns_key)
for i = 1, #conns, 2 do
  redis.call('DEL', p .. 'conn:' .. conns[i])
  if conns[i + 1] ~= '' then redis.call('ZREM', p .. 'user:' .. conns[i + 1], conns[i]) end
end
local left = {}
for _, entry in ipairs(redis.call('SMEMBERS', presence_key)) do
  local space = string.find(entry, ' ', 1, true)
  if space then
    local channel = string.sub(entry, 1, space - 1)
    local member = string.sub(entry, space + 1)
    if redis.call('ZREM', p .. 'presence:' .. channel, member) == 1 then
      left[#left + 1] = channel
      left[#left + 1] = member
    end
  end
end
redis.call('DEL', conns_key, presence_key)
redis.call('SREM', p .. 'instances', id)
return {#conns / 2, had_beat, left}
)lua";

}  // namespace wshub::detail::registry_scripts
