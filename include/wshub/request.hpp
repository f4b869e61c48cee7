// wshub/request.hpp: a client request as a protocol policy decodes it.
//
// A protocol policy (JsonProtocol by default) turns one client frame into a
// ClientRequest or a DecodeError. The hub never looks at the wire format
// itself; it only sees these types.
//
// Lifetime: the string_view members point into the frame that was decoded and
// are valid only as long as that frame's buffer lives.
//
// Thread safety: plain values; no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "wshub/error.hpp"

namespace wshub {

enum class RequestType : std::uint8_t { subscribe, unsubscribe, publish, send, presence };

// The position a subscribe asks to resume from (history; see docs/protocol.md).
struct SincePosition {
    std::uint64_t offset = 0;
    std::string epoch;
};

struct ClientRequest {
    RequestType type = RequestType::subscribe;
    // The request's id exactly as it appeared on the wire: a JSON string token
    // including its quotes (e.g. "\"a1\"") or an integer token (e.g. "42").
    // Empty when the request had no id. Echoed back verbatim in ack/error.
    std::string_view id;
    std::string channel;  // decoded; subscribe, unsubscribe, publish, presence. Not yet validated as a name.
    std::string to;       // decoded; send
    std::string_view data;  // the raw JSON text of "data", byte for byte; publish, send
    std::optional<SincePosition> since;  // subscribe only
};

struct DecodeError {
    error code = error::bad_request;
    std::string message;  // human-readable, safe to send to the client (no echo of hostile bytes)
    std::string_view id;  // the raw id token when it could be recovered, else empty
};

struct DecodeLimits {
    std::size_t max_nesting_depth = 32;  // deepest allowed nesting of arrays/objects, counting the top-level object as 1
};

}  // namespace wshub
