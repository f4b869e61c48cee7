// wshub/detail/wspp_config.hpp: the websocketpp configuration behind
// WebsocketppTransport.
//
// Three things differ from websocketpp's stock asio config:
//   - a log adapter that forwards websocketpp's access and error logs to a
//     sink of ours (the hub's logger), with query strings redacted so that
//     tokens never reach a log;
//   - a transport connection that counts the bytes its socket has written, so
//     the transport can tell how much a connection has queued without reading
//     websocketpp's unsynchronised send-buffer counter from another thread;
//   - per-connection fields wshub needs (its id, what the auth hook returned).
//
// Thread safety: the log adapter's sink is set once before the io_context
// runs; the counters are atomics; everything else follows websocketpp's
// multithreaded asio config (a strand per connection, locks around sends).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

#include "wshub/connection_info.hpp"

namespace wshub::detail {

// Removes everything between '?' and the next space or quote: query strings
// carry tokens, and websocketpp's access log prints request lines verbatim.
inline std::string redact_query_strings(std::string line) {
    std::size_t pos = 0;
    while ((pos = line.find('?', pos)) != std::string::npos) {
        std::size_t end = pos + 1;
        while (end < line.size() && line[end] != ' ' && line[end] != '"') ++end;
        line.replace(pos, end - pos, "?<redacted>");
        pos += 11;
    }
    return line;
}

// websocketpp's logger concept, forwarding to a sink.
class wspp_log_adapter {
public:
    using level = websocketpp::log::level;
    using hint = websocketpp::log::channel_type_hint::value;
    // is_access: the access log (connections, HTTP) rather than the error log.
    using sink_type = std::function<void(bool is_access, level channel, const std::string& line)>;

    explicit wspp_log_adapter(hint h) : access_(h == websocketpp::log::channel_type_hint::access) {}
    wspp_log_adapter(level, hint h) : access_(h == websocketpp::log::channel_type_hint::access) {}

    void set_sink(sink_type sink) { sink_ = std::move(sink); }
    void set_channels(level channels) { channels_.fetch_or(channels, std::memory_order_relaxed); }
    void clear_channels(level channels) { channels_.fetch_and(~channels, std::memory_order_relaxed); }

    void write(level channel, const std::string& line) {
        if (sink_ && dynamic_test(channel)) sink_(access_, channel, redact_query_strings(line));
    }
    void write(level channel, const char* line) {
        if (sink_ && dynamic_test(channel)) sink_(access_, channel, redact_query_strings(line));
    }
    constexpr bool static_test(level channel) const {
        // Per-frame and developer channels are compiled out: never a log line
        // (nor the stringstream websocketpp builds for one) per frame.
        if (access_) {
            return (channel & (websocketpp::log::alevel::frame_header | websocketpp::log::alevel::frame_payload |
                               websocketpp::log::alevel::devel)) == 0;
        }
        return (channel & websocketpp::log::elevel::devel) == 0;
    }
    bool dynamic_test(level channel) const { return (channels_.load(std::memory_order_relaxed) & channel) != 0; }

private:
    bool access_;
    std::atomic<level> channels_{0};
    sink_type sink_;
};

// The transport half of a connection, with a byte counter on the socket's writes.
template <class config>
class counting_connection : public websocketpp::transport::asio::connection<config> {
public:
    using base = websocketpp::transport::asio::connection<config>;
    using base::async_write;

    counting_connection(bool is_server, const websocketpp::lib::shared_ptr<typename config::alog_type>& alog,
                        const websocketpp::lib::shared_ptr<typename config::elog_type>& elog)
        : base(is_server, alog, elog) {}

    // Every WebSocket frame (data and control) is written through this overload;
    // the HTTP handshake goes through the (const char*, size_t) one.
    void async_write(const std::vector<websocketpp::transport::buffer>& buffers,
                     websocketpp::transport::write_handler handler) {
        std::uint64_t bytes = 0;
        for (const auto& b : buffers) bytes += b.len;
        // websocketpp pushes two buffers (header, payload) per message. A batch
        // (several frames back to back) has an empty header and is counted frame by frame.
        std::uint64_t frames = 0;
        for (std::size_t i = 0; i + 1 < buffers.size(); i += 2) {
            frames += buffers[i].len == 0 ? count_frames(buffers[i + 1].buf, buffers[i + 1].len) : 1;
        }
        base::async_write(buffers, [this, bytes, frames, handler = std::move(handler)](
                                       const websocketpp::lib::error_code& ec) {
            // The base handler holds a shared_ptr to this connection while the write is pending.
            if (!ec) {
                bytes_written.fetch_add(bytes, std::memory_order_relaxed);
                frames_written.fetch_add(frames, std::memory_order_relaxed);
            }
            handler(ec);
        });
    }

    // websocketpp calls this (as transport_con_type::dispatch) to start a
    // write after send() queued a frame, and to go on writing after a write
    // completed. Its own version always posts. With wshub_inline_writes the
    // handler runs at once when this thread can take the connection's strand
    // (nobody else holds it): the write starts inside the hub's fan-out
    // instead of one pass of the io_context's queue later. Thread safety is
    // the strand's either way; websocketpp calls dispatch with no lock held.
    websocketpp::lib::error_code dispatch(websocketpp::transport::dispatch_handler handler) {
        if (wshub_inline_writes) {
            base::get_strand()->dispatch(std::move(handler));
            return {};
        }
        return base::dispatch(std::move(handler));
    }

    // Runs fn on this connection's strand (websocketpp keeps dispatch protected;
    // terminate() and ping() must not race with the connection's own handlers).
    void run_on_strand(std::function<void()> fn) { base::dispatch(std::move(fn)); }

    // Bytes of frames handed to websocketpp (written by the transport's callers).
    std::atomic<std::uint64_t> bytes_enqueued{0};
    // Bytes the socket has written (written on the connection's strand).
    std::atomic<std::uint64_t> bytes_written{0};
    // Frames handed to websocketpp, and frames the socket has written.
    std::atomic<std::uint64_t> frames_enqueued{0};
    std::atomic<std::uint64_t> frames_written{0};

    // Counts `frames` frames of `bytes` in all as queued.
    void count_enqueued(std::uint64_t bytes, std::uint64_t frames = 1) {
        bytes_enqueued.fetch_add(bytes, std::memory_order_relaxed);
        frames_enqueued.fetch_add(frames, std::memory_order_relaxed);
    }
    void uncount_enqueued(std::uint64_t bytes, std::uint64_t frames = 1) {
        bytes_enqueued.fetch_sub(bytes, std::memory_order_relaxed);
        frames_enqueued.fetch_sub(frames, std::memory_order_relaxed);
    }

    // The frames in a buffer of complete server (unmasked) frames back to back.
    static std::uint64_t count_frames(const char* data, std::size_t len) {
        std::uint64_t frames = 0;
        std::size_t at = 0;
        while (at + 2 <= len) {
            const auto length7 = static_cast<unsigned char>(data[at + 1]) & 0x7F;
            std::uint64_t payload = length7;
            std::size_t header = 2;
            if (length7 == 126 || length7 == 127) {
                header += length7 == 126 ? 2 : 8;
                if (at + header > len) break;
                payload = 0;
                for (std::size_t i = 2; i < header; ++i) payload = (payload << 8) | static_cast<unsigned char>(data[at + i]);
            }
            ++frames;
            at += header + static_cast<std::size_t>(payload);
        }
        return frames;
    }
    // Bytes handed over and not yet written.
    std::uint64_t backlog_bytes() const {
        const std::uint64_t written = bytes_written.load(std::memory_order_relaxed);
        const std::uint64_t enqueued = bytes_enqueued.load(std::memory_order_relaxed);
        return enqueued > written ? enqueued - written : 0;
    }

    // Set right after accept (WebsocketppTransportConfig::inline_writes), before any write is dispatched.
    bool wshub_inline_writes = false;
    // Set during the handshake, before the connection opens; read afterwards.
    ConnectionId wshub_id = 0;
    ConnectionInfo wshub_info;
    std::atomic<bool> wshub_opened{false};
    std::atomic<bool> wshub_closed{false};
    std::atomic<std::int64_t> wshub_last_ping_ms{0};
    std::atomic<bool> wshub_awaiting_pong{false};
};

// websocketpp's asio transport endpoint, making counting connections.
template <class config>
class counting_endpoint : public websocketpp::transport::asio::endpoint<config> {
public:
    using transport_con_type = counting_connection<config>;
    using transport_con_ptr = typename transport_con_type::ptr;
};

struct wspp_config : websocketpp::config::asio {
    using type = wspp_config;
    using base = websocketpp::config::asio;

    using concurrency_type = base::concurrency_type;
    using request_type = base::request_type;
    using response_type = base::response_type;
    using message_type = base::message_type;
    using con_msg_manager_type = base::con_msg_manager_type;
    using endpoint_msg_manager_type = base::endpoint_msg_manager_type;
    using alog_type = wspp_log_adapter;
    using elog_type = wspp_log_adapter;
    using rng_type = base::rng_type;

    struct transport_config : base::transport_config {
        using concurrency_type = type::concurrency_type;
        using alog_type = type::alog_type;
        using elog_type = type::elog_type;
        using request_type = type::request_type;
        using response_type = type::response_type;
        using socket_type = websocketpp::transport::asio::basic_socket::endpoint;
        // The io_context may run on several threads: websocketpp then uses a
        // strand per connection and locks around sends.
        static const bool enable_multithreading = true;
    };
    using transport_type = counting_endpoint<transport_config>;

    // Read buffer per connection, held inline in every connection object for
    // its whole life: websocketpp's default is 16 KiB. A hub's clients send
    // little (subscribes, publishes, pongs), so 1 KiB keeps an idle connection
    // small (docs/benchmarks.md, scenario 3); a larger frame is read in several
    // steps into the message being assembled, never truncated.
    static const size_t connection_read_buffer_size = 1024;

    // Every channel compiled in except per-frame ones (see static_test);
    // which ones are written is decided at run time.
    static const websocketpp::log::level elog_level = websocketpp::log::elevel::all;
    static const websocketpp::log::level alog_level = websocketpp::log::alevel::all;
};

using wspp_server = websocketpp::server<wspp_config>;
using wspp_connection_ptr = wspp_server::connection_ptr;
using wspp_message_ptr = wspp_config::message_type::ptr;

// A complete unmasked (server-to-client) text frame header for a payload of `size` bytes.
inline std::string text_frame_header(std::uint64_t size) {
    std::string header;
    header.push_back(static_cast<char>(0x81));  // FIN + text
    if (size < 126) {
        header.push_back(static_cast<char>(size));
    } else if (size <= 0xFFFF) {
        header.push_back(static_cast<char>(126));
        header.push_back(static_cast<char>((size >> 8) & 0xFF));
        header.push_back(static_cast<char>(size & 0xFF));
    } else {
        header.push_back(static_cast<char>(127));
        for (int shift = 56; shift >= 0; shift -= 8) header.push_back(static_cast<char>((size >> shift) & 0xFF));
    }
    return header;
}

}  // namespace wshub::detail
