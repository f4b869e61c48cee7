// wshub/detail/channel_name.hpp: the channel-name rule of the protocol.
//
// 1 to 128 bytes of A-Z a-z 0-9 _ - . : @ / =. Nothing else: no spaces, glob
// characters (* ? [ ]), control bytes or NUL, so a client can never name a
// Redis pattern or anything outside the hub's namespace.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <string_view>

namespace wshub::detail {

inline constexpr std::size_t max_channel_name_bytes = 128;

constexpr bool is_channel_name_byte(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.' || c == ':' || c == '@' || c == '/' || c == '=';
}

constexpr bool is_valid_channel_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > max_channel_name_bytes) return false;
    for (char c : name) {
        if (!is_channel_name_byte(c)) return false;
    }
    return true;
}

// Instance ids: 1..64 bytes of A-Z a-z 0-9 _ . -
constexpr bool is_valid_instance_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                        c == '.' || c == '-';
        if (!ok) return false;
    }
    return true;
}

}  // namespace wshub::detail
