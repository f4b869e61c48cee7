// wshub/frame.hpp: an outgoing frame, encoded once and shared by every recipient.
//
// The hub encodes a message for a channel once and hands the same SharedFrame
// to every local subscriber; transports must not copy the payload per
// recipient. `transport_cache` lets a transport keep its own prepared form of the
// frame (websocketpp's prepared message, for example) so that it, too, is built
// once per fan-out rather than once per recipient.
//
// Thread safety: a SharedFrame's payload is immutable and may be read from any
// thread. `transport_cache` is only touched by the transport while it sends,
// which the hub does from its strand; a transport that sends from several
// threads must synchronise its own use of it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace wshub {

// What a frame is for; the slow-client policy may drop `message` frames but never the others.
enum class FrameKind : std::uint8_t {
    message,  // fan-out of a channel publish: may be dropped by a drop policy
    direct,   // a message addressed to this one connection
    control,  // welcome, ack, error, gap, join, leave: never dropped
};

struct OutFrame {
    std::string payload;  // one complete WebSocket text message
    FrameKind kind = FrameKind::control;
    mutable std::shared_ptr<void> transport_cache;  // see the header comment
};

using SharedFrame = std::shared_ptr<const OutFrame>;

inline SharedFrame make_frame(std::string payload, FrameKind kind = FrameKind::control) {
    auto frame = std::make_shared<OutFrame>();
    frame->payload = std::move(payload);
    frame->kind = kind;
    return frame;
}

}  // namespace wshub
