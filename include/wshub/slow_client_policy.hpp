// wshub/slow_client_policy.hpp: what happens to a connection whose outgoing
// queue passes HubConfig::max_queue_bytes or max_queue_messages.
//
// A slow-client policy is a type with one static member:
//
//   static SlowClientAction on_over_limit(FrameKind kind) noexcept;
//
// called when a frame of `kind` would take the connection past its limit.
// Whatever the policy says, a connection whose queue reaches twice the limit
// is evicted: memory stays bounded even if a client floods requests and never
// reads their answers.
//
// Thread safety: stateless; called on the hub's strand.
#pragma once

#include <cstdint>

#include "wshub/frame.hpp"

namespace wshub {

enum class SlowClientAction : std::uint8_t {
    evict,        // close the connection with 4008
    drop,         // drop this frame; the client gets `gap` for its channel once it has drained
    send_anyway,  // queue it regardless (up to the hard cap of twice the limit)
};

// Default: a client that cannot keep up is closed with 4008 and reconnects
// (then resynchronises). One slow client never delays the others.
struct CloseSlowClients {
    static constexpr SlowClientAction on_over_limit(FrameKind) noexcept { return SlowClientAction::evict; }
};

// Alternative: channel messages are dropped while the client is over the
// limit, and once it has drained it gets one `gap` per affected channel.
// Acks, errors and direct messages are never dropped.
struct DropAndGap {
    static constexpr SlowClientAction on_over_limit(FrameKind kind) noexcept {
        return kind == FrameKind::message ? SlowClientAction::drop : SlowClientAction::send_anyway;
    }
};

}  // namespace wshub
