// wshub/detail/registry_keys.hpp: the connection registry's Redis key layout and value formats.
//
// Every name starts with the hub's prefix (default "wshub:"); docs/operations.md
// has the table. Every key carries a TTL that live instances refresh, so even a
// deployment that crashes whole leaves nothing behind for longer than the TTL.
//
//   <p>conn:<connection>             string "<instance>\n<since_ms>\n<user>"
//   <p>instance:<instance>           string "<connections> <started_ms> <address>" (the heartbeat)
//   <p>instance:<instance>:conns     hash connection -> user (the janitor's index)
//   <p>instance:<instance>:presence  set of "<channel> <member>" (the janitor's index)
//   <p>instances                     set of instance ids that have registered
//   <p>user:<user>                   sorted set connection -> expiry (ms since the epoch), of one user
//   <p>presence:<channel>            sorted set member -> expiry (ms since the epoch)
//   <p>inbox:<instance>              Pub/Sub channel: direct messages for that instance
//   <p>janitor                       lock: the instance cleaning up now (SET NX PX)
//
// A presence member is "<connection> <user>": connection ids hold no space, so
// the first space splits it and the user may be any string.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "wshub/detail/topics.hpp"

namespace wshub::detail::registry_keys {

inline std::string join(std::string_view prefix, std::string_view kind, std::string_view name,
                        std::string_view suffix = {}) {
    std::string key;
    key.reserve(prefix.size() + kind.size() + name.size() + suffix.size());
    key.append(prefix).append(kind).append(name).append(suffix);
    return key;
}

inline std::string conn(std::string_view p, std::string_view id) { return join(p, "conn:", id); }
inline std::string instance(std::string_view p, std::string_view id) { return join(p, "instance:", id); }
inline std::string instance_conns(std::string_view p, std::string_view id) { return join(p, "instance:", id, ":conns"); }
inline std::string instance_presence(std::string_view p, std::string_view id) {
    return join(p, "instance:", id, ":presence");
}
inline std::string instances(std::string_view p) { return join(p, "instances", {}); }
inline std::string user(std::string_view p, std::string_view user_id) { return join(p, "user:", user_id); }
inline std::string presence(std::string_view p, std::string_view channel) { return join(p, "presence:", channel); }
inline std::string inbox(std::string_view p, std::string_view instance_id) { return join(p, "inbox:", instance_id); }
inline std::string janitor_lock(std::string_view p) { return join(p, "janitor", {}); }

// ---- values -------------------------------------------------------------------

struct ConnValue {
    std::string instance;
    std::int64_t since_ms = 0;
    std::string user;
};

inline std::string encode_conn(std::string_view instance_id, std::int64_t since_ms, std::string_view user_id) {
    std::string out;
    out.append(instance_id).push_back('\n');
    out.append(std::to_string(since_ms)).push_back('\n');
    out.append(user_id);
    return out;
}

inline std::optional<std::int64_t> parse_int64(std::string_view digits) {
    if (digits.empty() || digits.size() > 18) return std::nullopt;
    std::int64_t value = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + (c - '0');
    }
    return value;
}

inline std::optional<ConnValue> decode_conn(std::string_view value) {
    const auto first = value.find('\n');
    if (first == std::string_view::npos) return std::nullopt;
    const auto second = value.find('\n', first + 1);
    if (second == std::string_view::npos) return std::nullopt;
    const auto since = parse_int64(value.substr(first + 1, second - first - 1));
    if (!since || first == 0) return std::nullopt;
    return ConnValue{std::string(value.substr(0, first)), *since, std::string(value.substr(second + 1))};
}

struct HeartbeatValue {
    std::uint64_t connections = 0;
    std::int64_t started_ms = 0;
    std::string address;
};

inline std::string encode_heartbeat(std::uint64_t connections, std::int64_t started_ms, std::string_view address) {
    std::string out = std::to_string(connections);
    out.push_back(' ');
    out.append(std::to_string(started_ms)).push_back(' ');
    out.append(address);
    return out;
}

inline std::optional<HeartbeatValue> decode_heartbeat(std::string_view value) {
    const auto first = value.find(' ');
    if (first == std::string_view::npos) return std::nullopt;
    const auto second = value.find(' ', first + 1);
    if (second == std::string_view::npos) return std::nullopt;
    const auto count = parse_int64(value.substr(0, first));
    const auto started = parse_int64(value.substr(first + 1, second - first - 1));
    if (!count || !started) return std::nullopt;
    return HeartbeatValue{static_cast<std::uint64_t>(*count), *started, std::string(value.substr(second + 1))};
}

// ---- presence members and the janitor's index ----------------------------------

// "<first> <second>": presence members and index entries are both pairs
// whose first part holds no space.
inline std::string join_with_space(std::string_view first, std::string_view second) {
    std::string out;
    out.reserve(first.size() + 1 + second.size());
    out.append(first).push_back(' ');
    out.append(second);
    return out;
}

inline std::string presence_member(std::string_view connection, std::string_view user_id) {
    return join_with_space(connection, user_id);
}

struct PresenceMember {
    std::string_view connection;
    std::string_view user;
};

inline std::optional<PresenceMember> split_presence_member(std::string_view member) {
    const auto space = member.find(' ');
    if (space == std::string_view::npos || space == 0) return std::nullopt;
    return PresenceMember{member.substr(0, space), member.substr(space + 1)};
}

// The janitor's index entry for one presence member: "<channel> <member>"
// (channel names hold no space). Only the cleanup script splits it
// (detail/registry_scripts.hpp).
inline std::string presence_entry(std::string_view channel, std::string_view member) {
    return join_with_space(channel, member);
}

// The instance a public connection id ("<instance>-<n>") belongs to.
inline std::optional<std::string_view> instance_of(std::string_view connection) {
    const auto parsed = parse_connection_id(connection);
    if (!parsed) return std::nullopt;
    return parsed->instance;
}

}  // namespace wshub::detail::registry_keys
