// tests/support/memory_transport.hpp: an in-memory Transport for hub unit tests.
//
// Records every frame the hub sends and every close, and lets a test play the
// client side: connect, send a frame, disconnect, stall a connection (frames
// pile up in its queue, as with a client that stopped reading) and drain it.
// No sockets; the real websocketpp transport has its own end-to-end tests.
// MemoryTransport does not take batch frames, so the hub sends it messages
// one by one; BatchingMemoryTransport declares `sends_batches` and is given a
// tick's messages for a channel as one batch frame, which the client side
// unpacks into its messages.
//
// Thread safety: none; the test and the io_context run on one thread.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "wshub/transport_concept.hpp"

namespace wshub::test {

class MemoryTransport {
public:
    struct Peer {
        std::vector<std::string> received;   // payloads the client has taken, in order
        std::vector<SharedFrame> sent;       // every frame handed to send(), in order (shared buffers)
        std::deque<SharedFrame> queue;       // frames not yet taken while stalled
        bool stalled = false;
        bool open = true;
        bool answers_close = true;           // false: never completes a close handshake
        std::optional<std::uint16_t> close_code;
        std::string close_reason;
        bool terminated = false;
    };

    // --- the Transport concept -------------------------------------------------
    void set_handlers(TransportHandlers handlers) { handlers_ = std::move(handlers); }

    void send(ConnectionId id, const SharedFrame& frame) {
        Peer& p = peer_mut(id);
        if (!p.open) return;
        p.sent.push_back(frame);
        if (p.stalled) {
            p.queue.push_back(frame);
        } else {
            take(p, *frame);
        }
    }

    void close(ConnectionId id, std::uint16_t code, std::string_view reason) {
        Peer& p = peer_mut(id);
        ++close_calls_;
        if (!p.open || p.close_code) return;
        p.close_code = code;
        p.close_reason = std::string(reason);
        if (p.answers_close) {
            p.open = false;
            handlers_.on_close(id);
        }
    }

    void terminate(ConnectionId id) {
        Peer& p = peer_mut(id);
        p.terminated = true;
        p.open = false;
    }

    QueueStats queued(ConnectionId id) const {
        const auto it = peers_.find(id);
        QueueStats stats;
        if (it == peers_.end()) return stats;
        for (const auto& f : it->second.queue) {
            stats.bytes += f->payload_bytes();
            stats.messages += f->messages();
        }
        return stats;
    }

    void stop_accepting() { accepting_ = false; }

    // --- the client side, for tests ---------------------------------------------
    ConnectionId connect(ConnectionInfo info = {}) {
        if (!accepting_) throw std::logic_error("MemoryTransport: not accepting");
        const ConnectionId id = next_id_++;
        peers_[id];
        handlers_.on_open(id, std::move(info));
        return id;
    }

    // Opens a connection even though stop_accepting was called (a handshake that raced it).
    ConnectionId connect_racing_shutdown() {
        const ConnectionId id = next_id_++;
        peers_[id];
        handlers_.on_open(id, {});
        return id;
    }

    void receive(ConnectionId id, std::string text, MessageKind kind = MessageKind::text) {
        handlers_.on_message(id, std::move(text), kind);
    }

    void disconnect(ConnectionId id) {
        Peer& p = peer_mut(id);
        if (!p.open) return;
        p.open = false;
        handlers_.on_close(id);
    }

    void stall(ConnectionId id) { peer_mut(id).stalled = true; }

    // The client reads everything queued and keeps reading.
    void drain(ConnectionId id) {
        Peer& p = peer_mut(id);
        p.stalled = false;
        for (const auto& f : p.queue) take(p, *f);
        p.queue.clear();
    }

    void ignore_close(ConnectionId id) { peer_mut(id).answers_close = false; }

    const Peer& peer(ConnectionId id) const { return peers_.at(id); }
    bool accepting() const noexcept { return accepting_; }
    std::size_t close_calls() const noexcept { return close_calls_; }

private:
    static void take(Peer& p, const OutFrame& frame) {
        if (frame.batch.empty()) {
            p.received.push_back(frame.payload);
            return;
        }
        for (const auto& part : frame.batch) p.received.push_back(part->payload);
    }

    Peer& peer_mut(ConnectionId id) {
        const auto it = peers_.find(id);
        if (it == peers_.end()) throw std::logic_error("MemoryTransport: unknown connection " + std::to_string(id));
        return it->second;
    }

    TransportHandlers handlers_;
    std::map<ConnectionId, Peer> peers_;
    ConnectionId next_id_ = 1;
    bool accepting_ = true;
    std::size_t close_calls_ = 0;
};

// The same, taking batch frames.
class BatchingMemoryTransport : public MemoryTransport {
public:
    static constexpr bool sends_batches = true;
};

}  // namespace wshub::test
