// wshub/detail/envelope.hpp: what one instance publishes to the others.
//
// A client publish travels between instances as "w1 <origin-instance>\n<data>":
// the origin lets an instance tell its own messages apart, and <data> is the
// client's raw JSON, untouched. Each receiving instance encodes the outgoing
// `message` frame once and shares it with all its local subscribers.
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

}  // namespace wshub::detail
