// wshub/detail/envelope.hpp: what one instance publishes to the others.
//
// A client publish travels between instances as "w1 <origin-instance>\n<data>":
// the origin lets an instance tell its own messages apart, and <data> is the
// client's raw JSON, untouched. Each receiving instance encodes the outgoing
// `message` frame once and shares it with all its local subscribers.
//
// Two more kinds share the channel topics and the inboxes:
//   presence (on <p>ch:<channel>):  "p1 j" or "p1 l", then the fields connection and user
//   direct   (on <p>inbox:<inst>):  "d1 c" (to a connection) or "d1 u" (to a user),
//                                   then the fields from and target, then the raw data
// A field is "<length>:<bytes>", so user ids may hold any byte, newlines included.
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace wshub::detail {

inline constexpr std::string_view envelope_magic = "w1 ";

inline std::string encode_envelope(std::string_view origin, std::string_view data) {
    std::string out;
    out.reserve(envelope_magic.size() + origin.size() + 1 + data.size());
    out.append(envelope_magic).append(origin).push_back('\n');
    out.append(data);
    return out;
}

struct Envelope {
    std::string_view origin;
    std::string_view data;
};

// nullopt for anything that is not an envelope of this version.
inline std::optional<Envelope> decode_envelope(std::string_view payload) {
    if (payload.compare(0, envelope_magic.size(), envelope_magic) != 0) return std::nullopt;
    payload.remove_prefix(envelope_magic.size());
    const auto newline = payload.find('\n');
    if (newline == std::string_view::npos || newline == 0) return std::nullopt;
    const auto data = payload.substr(newline + 1);
    if (data.empty()) return std::nullopt;
    return Envelope{payload.substr(0, newline), data};
}

// ---- presence events and direct messages ---------------------------------------

inline void put_field(std::string& out, std::string_view field) {
    out.append(std::to_string(field.size())).push_back(':');
    out.append(field);
}

// Takes one "<length>:<bytes>" field off the front of `in`; nullopt when malformed.
inline std::optional<std::string_view> take_field(std::string_view& in) {
    std::size_t length = 0;
    std::size_t i = 0;
    for (; i < in.size() && i < 10 && in[i] >= '0' && in[i] <= '9'; ++i) {
        length = length * 10 + static_cast<std::size_t>(in[i] - '0');
    }
    if (i == 0 || i >= in.size() || in[i] != ':' || in.size() - i - 1 < length) return std::nullopt;
    const auto field = in.substr(i + 1, length);
    in.remove_prefix(i + 1 + length);
    return field;
}

inline constexpr std::string_view presence_magic = "p1 ";

struct PresenceEvent {
    bool join = true;
    std::string_view connection;
    std::string_view user;
};

inline std::string encode_presence_event(bool join, std::string_view connection, std::string_view user) {
    std::string out(presence_magic);
    out.push_back(join ? 'j' : 'l');
    put_field(out, connection);
    put_field(out, user);
    return out;
}

inline std::optional<PresenceEvent> decode_presence_event(std::string_view payload) {
    if (payload.compare(0, presence_magic.size(), presence_magic) != 0) return std::nullopt;
    payload.remove_prefix(presence_magic.size());
    if (payload.empty() || (payload[0] != 'j' && payload[0] != 'l')) return std::nullopt;
    PresenceEvent event;
    event.join = payload[0] == 'j';
    payload.remove_prefix(1);
    const auto connection = take_field(payload);
    const auto user = connection ? take_field(payload) : std::nullopt;
    if (!connection || !user || connection->empty() || !payload.empty()) return std::nullopt;
    event.connection = *connection;
    event.user = *user;
    return event;
}

inline constexpr std::string_view direct_magic = "d1 ";

enum class DirectTarget : char { connection = 'c', user = 'u' };

struct DirectEnvelope {
    DirectTarget kind = DirectTarget::connection;
    std::string_view from;
    std::string_view target;  // a public connection id, or a user id
    std::string_view data;
};

inline std::string encode_direct(DirectTarget kind, std::string_view from, std::string_view target,
                                 std::string_view data) {
    std::string out;
    out.reserve(direct_magic.size() + 1 + from.size() + target.size() + data.size() + 24);
    out.append(direct_magic).push_back(static_cast<char>(kind));
    put_field(out, from);
    put_field(out, target);
    out.append(data);
    return out;
}

inline std::optional<DirectEnvelope> decode_direct(std::string_view payload) {
    if (payload.compare(0, direct_magic.size(), direct_magic) != 0) return std::nullopt;
    payload.remove_prefix(direct_magic.size());
    if (payload.empty() || (payload[0] != 'c' && payload[0] != 'u')) return std::nullopt;
    DirectEnvelope envelope;
    envelope.kind = static_cast<DirectTarget>(payload[0]);
    payload.remove_prefix(1);
    const auto from = take_field(payload);
    const auto target = from ? take_field(payload) : std::nullopt;
    if (!from || !target || target->empty() || payload.empty()) return std::nullopt;
    envelope.from = *from;
    envelope.target = *target;
    envelope.data = payload;
    return envelope;
}

}  // namespace wshub::detail
