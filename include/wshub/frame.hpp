// wshub/frame.hpp: an outgoing frame, encoded once and shared by every recipient.
//
// The hub encodes a message for a channel once and hands the same SharedFrame
// to every local subscriber; transports must not copy the payload per
// recipient. `transport_cache` lets a transport keep its own prepared form of the
// frame (websocketpp's prepared message, for example) so that it, too, is built
// once per fan-out rather than once per recipient. A batch frame carries several
// channel messages that go out together (one write per recipient per tick).
//
// Thread safety: a SharedFrame's payload is immutable and may be read from any
// thread. `transport_cache` is only touched by the transport while it sends,
// which the hub does from its strand; a transport that sends from several
// threads must synchronise its own use of it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace wshub {

// What a frame is for; the slow-client policy may drop `message` frames but never the others.
enum class FrameKind : std::uint8_t {
    message,  // fan-out of a channel publish: may be dropped by a drop policy
    direct,   // a message addressed to this one connection
    control,  // welcome, ack, error, gap, join, leave: never dropped
};

struct OutFrame;
using SharedFrame = std::shared_ptr<const OutFrame>;

struct OutFrame {
    std::string payload;  // one complete WebSocket text message (empty for a batch)
    FrameKind kind = FrameKind::control;
    // A batch: the messages one event-loop tick produced for one channel, in
    // order, to go out back to back in one write (see transport_concept.hpp,
    // `sends_batches`). Empty for a single message. Only transports that
    // declare `sends_batches` are ever given a batch.
    std::vector<SharedFrame> batch;
    std::size_t batch_bytes = 0;  // the batch's payloads added up (make_batch sets it)
    mutable std::shared_ptr<void> transport_cache;  // see the header comment

    // Messages this frame carries: 1, or the batch's size.
    std::size_t messages() const noexcept { return batch.empty() ? 1 : batch.size(); }
    // Payload bytes this frame carries (the batch's payloads added up).
    std::size_t payload_bytes() const noexcept { return batch.empty() ? payload.size() : batch_bytes; }
};

inline SharedFrame make_frame(std::string payload, FrameKind kind = FrameKind::control) {
    auto frame = std::make_shared<OutFrame>();
    frame->payload = std::move(payload);
    frame->kind = kind;
    return frame;
}

// A batch of channel messages, in order. The byte total is added up here,
// once, rather than by every recipient's queue check.
inline SharedFrame make_batch(std::vector<SharedFrame> messages) {
    auto frame = std::make_shared<OutFrame>();
    frame->kind = FrameKind::message;
    for (const auto& message : messages) frame->batch_bytes += message->payload.size();
    frame->batch = std::move(messages);
    return frame;
}

}  // namespace wshub
