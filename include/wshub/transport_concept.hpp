// wshub/transport_concept.hpp: what the Hub needs from a Transport, and the
// traits that check it at compile time.
//
// A Transport accepts WebSocket connections and sends frames. The requirement,
// written once (docs/concepts.md says the same in prose):
//
//   class Transport {
//   public:
//       // Called once, by the Hub's constructor, before any connection opens.
//       // The transport calls these handlers for every connection, from any
//       // thread; the hub moves the work onto its strand.
//       void set_handlers(wshub::TransportHandlers handlers);
//
//       // Queue one text frame for the connection. Never blocks, never copies
//       // the payload per recipient (keep the SharedFrame alive until written).
//       // Unknown or closed ids are ignored.
//       void send(wshub::ConnectionId id, const wshub::SharedFrame& frame);
//
//       // Start the close handshake with a WebSocket close code and reason.
//       // handlers.on_close follows exactly once, when the connection is gone.
//       void close(wshub::ConnectionId id, std::uint16_t code, std::string_view reason);
//
//       // Drop the connection at once, without a handshake (shutdown deadline
//       // passed). The hub forgets the id; a later on_close for it is ignored.
//       void terminate(wshub::ConnectionId id);
//
//       // Bytes and frames handed to the transport for this connection that
//       // the peer has not taken yet. Drives the slow-client policy.
//       wshub::QueueStats queued(wshub::ConnectionId id) const;
//
//       // Stop accepting new connections; existing ones stay (graceful shutdown).
//       void stop_accepting();
//
//       // Optional. With it, send() may be given a batch frame (frame->batch
//       // not empty): the messages one tick produced for a channel, to be sent
//       // in order, back to back, ideally in one write, and counted in
//       // queued() as batch.size() frames. Without it, the hub sends a batch's
//       // messages one by one.
//       static constexpr bool sends_batches = true;
//   };
//
// The hub calls send/close/terminate/queued/stop_accepting from its strand only,
// one call at a time. The handlers may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "wshub/connection_info.hpp"
#include "wshub/frame.hpp"

namespace wshub {

enum class MessageKind : std::uint8_t { text, binary };

struct QueueStats {
    std::size_t bytes = 0;     // payload bytes queued, not yet written to the socket
    std::size_t messages = 0;  // frames queued, not yet written to the socket
};

struct TransportHandlers {
    // A connection finished its handshake and may now receive frames.
    std::function<void(ConnectionId, ConnectionInfo)> on_open;
    // A complete message arrived. The payload is moved in; no copy is made.
    std::function<void(ConnectionId, std::string payload, MessageKind)> on_message;
    // The connection is gone (closed by either side or failed). Called once per opened connection.
    std::function<void(ConnectionId)> on_close;
};

namespace detail {

template <class T, class = void>
struct has_set_handlers : std::false_type {};
template <class T>
struct has_set_handlers<T, std::void_t<decltype(std::declval<T&>().set_handlers(std::declval<TransportHandlers>()))>>
    : std::true_type {};

template <class T, class = void>
struct has_send : std::false_type {};
template <class T>
struct has_send<T, std::void_t<decltype(std::declval<T&>().send(std::declval<ConnectionId>(),
                                                                 std::declval<const SharedFrame&>()))>>
    : std::true_type {};

template <class T, class = void>
struct has_close : std::false_type {};
template <class T>
struct has_close<T, std::void_t<decltype(std::declval<T&>().close(
                        std::declval<ConnectionId>(), std::declval<std::uint16_t>(), std::declval<std::string_view>()))>>
    : std::true_type {};

template <class T, class = void>
struct has_terminate : std::false_type {};
template <class T>
struct has_terminate<T, std::void_t<decltype(std::declval<T&>().terminate(std::declval<ConnectionId>()))>>
    : std::true_type {};

template <class T, class = void>
struct has_queued : std::false_type {};
template <class T>
struct has_queued<T, std::enable_if_t<std::is_convertible_v<
                         decltype(std::declval<const T&>().queued(std::declval<ConnectionId>())), QueueStats>>>
    : std::true_type {};

template <class T, class = void>
struct has_stop_accepting : std::false_type {};
template <class T>
struct has_stop_accepting<T, std::void_t<decltype(std::declval<T&>().stop_accepting())>> : std::true_type {};

template <class T, class = void>
struct sends_batches : std::false_type {};
template <class T>
struct sends_batches<T, std::enable_if_t<T::sends_batches>> : std::true_type {};

}  // namespace detail

// Whether Transport T takes batch frames (see `sends_batches` above).
template <class T>
inline constexpr bool transport_sends_batches_v = detail::sends_batches<T>::value;

template <class T>
inline constexpr bool is_transport_v =
    detail::has_set_handlers<T>::value && detail::has_send<T>::value && detail::has_close<T>::value &&
    detail::has_terminate<T>::value && detail::has_queued<T>::value && detail::has_stop_accepting<T>::value;

// Fails compilation with a message that names the first missing member.
template <class T>
constexpr bool check_transport() {
    static_assert(detail::has_set_handlers<T>::value,
                  "wshub Transport requirement: void set_handlers(wshub::TransportHandlers) is missing");
    static_assert(detail::has_send<T>::value,
                  "wshub Transport requirement: void send(wshub::ConnectionId, const wshub::SharedFrame&) is missing");
    static_assert(detail::has_close<T>::value,
                  "wshub Transport requirement: void close(wshub::ConnectionId, std::uint16_t, std::string_view) is missing");
    static_assert(detail::has_terminate<T>::value,
                  "wshub Transport requirement: void terminate(wshub::ConnectionId) is missing");
    static_assert(detail::has_queued<T>::value,
                  "wshub Transport requirement: wshub::QueueStats queued(wshub::ConnectionId) const is missing");
    static_assert(detail::has_stop_accepting<T>::value,
                  "wshub Transport requirement: void stop_accepting() is missing");
    return true;
}

}  // namespace wshub
