// wshub/error.hpp: the library's error codes, usable as std::error_code.
//
// Every asynchronous path in wshub reports through std::error_code. The values
// of `wshub::error` that a client can see map one-to-one to the "code" strings
// of the wire protocol (docs/protocol.md); the others stay inside the server.
//
// Thread safety: everything here is stateless and safe from any thread.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

namespace wshub {

enum class error {
    // Protocol error codes: the client sees these as the "code" of an error frame.
    bad_request = 1,         // frame is not a valid request (not JSON, not an object, unknown type, bad field)
    forbidden,               // the authorizer refused the request
    invalid_channel,         // channel name breaks the naming rule
    too_many_subscriptions,  // the connection already holds max_subscriptions_per_connection channels
    not_subscribed,          // unsubscribe from a channel the connection never joined
    rate_limited,            // the connection publishes faster than its budget
    not_found,               // the target connection or resource does not exist
    unavailable,             // a backend (Redis) needed for the request is unreachable
    too_large,               // a frame or field is larger than its limit
    internal,                // a bug or an unexpected failure on the server

    // Server-side conditions that never appear on the wire by themselves.
    shutting_down = 100,     // the hub is draining and accepts no new work
    connection_closed,       // the connection went away before the operation finished
    timed_out,               // a deadline passed
};

// The protocol's "code" string of an error (e.g. "invalid_channel"); server-side
// conditions map to "internal" except shutting_down, which clients see as "unavailable".
constexpr std::string_view protocol_code(error e) noexcept {
    switch (e) {
        case error::bad_request: return "bad_request";
        case error::forbidden: return "forbidden";
        case error::invalid_channel: return "invalid_channel";
        case error::too_many_subscriptions: return "too_many_subscriptions";
        case error::not_subscribed: return "not_subscribed";
        case error::rate_limited: return "rate_limited";
        case error::not_found: return "not_found";
        case error::unavailable: return "unavailable";
        case error::too_large: return "too_large";
        case error::internal: return "internal";
        case error::shutting_down: return "unavailable";
        case error::connection_closed: return "internal";
        case error::timed_out: return "unavailable";
    }
    return "internal";
}

namespace detail {

class error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "wshub"; }

    std::string message(int value) const override {
        switch (static_cast<error>(value)) {
            case error::bad_request: return "bad request";
            case error::forbidden: return "forbidden";
            case error::invalid_channel: return "invalid channel name";
            case error::too_many_subscriptions: return "too many subscriptions";
            case error::not_subscribed: return "not subscribed to the channel";
            case error::rate_limited: return "rate limited";
            case error::not_found: return "not found";
            case error::unavailable: return "backend unavailable";
            case error::too_large: return "too large";
            case error::internal: return "internal error";
            case error::shutting_down: return "hub is shutting down";
            case error::connection_closed: return "connection closed";
            case error::timed_out: return "timed out";
        }
        return "unknown wshub error";
    }
};

}  // namespace detail

inline const std::error_category& error_category() noexcept {
    static const detail::error_category_impl category;
    return category;
}

inline std::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), error_category()};
}

}  // namespace wshub

template <>
struct std::is_error_code_enum<wshub::error> : std::true_type {};
