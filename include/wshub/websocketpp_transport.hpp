// wshub/websocketpp_transport.hpp: the shipped Transport, websocketpp 0.8.2
// on standalone Asio.
//
// What it adds to websocketpp:
//   - fan-out without per-recipient copies: a SharedFrame becomes one
//     prepared (already framed, unmasked) websocketpp message, cached in the
//     frame, and that same message is queued on every recipient;
//   - queue accounting for the slow-client policy: bytes handed to a
//     connection minus bytes its socket has written;
//   - keepalive: a ping every ping_interval, close when the pong does not come
//     within pong_timeout; client pings are answered; handshake timeouts;
//   - limits: max_message_bytes closes with 1009 before the payload is
//     buffered; permessage-deflate stays off (websocketpp's inflater ignores
//     the size limit);
//   - the handshake: WebSocket only on `websocket_path`, an Origin allowlist
//     (403), an authentication hook (401/403) whose ConnectionInfo rides on the
//     connection to the hub's authorizer;
//   - plain HTTP on the same port for everything else (an HttpHandler);
//   - websocketpp's own logs routed to a sink (the hub's logger), quiet by
//     default, query strings redacted so tokens never reach a log.
//
// Thread safety: the io_context may be run by one thread or several. Setup
// (set_auth_hook, set_http_handler, set_log_sink, listen) happens before the
// io_context runs. The Transport-concept members are safe to call from any
// one thread at a time (the hub calls them from its strand); the handlers
// are called from websocketpp's threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "wshub/connection_info.hpp"
#include "wshub/detail/wspp_config.hpp"
#include "wshub/frame.hpp"
#include "wshub/logger.hpp"
#include "wshub/transport_concept.hpp"

namespace wshub {

struct WebsocketppTransportConfig {
    // Address to listen on. Default: "127.0.0.1" (loopback; say "0.0.0.0" to serve the network).
    std::string host = "127.0.0.1";
    // TCP port; 0 picks a free one (see local_port()). Default: 8080.
    std::uint16_t port = 8080;
    // The path of the WebSocket endpoint; other paths go to the HTTP handler. Default: "/ws".
    std::string websocket_path = "/ws";
    // Largest message a client may send, in bytes; larger closes with 1009
    // before the payload is read. Keep it equal to HubConfig::max_message_bytes. Default: 64 KiB.
    std::size_t max_message_bytes = 64 * 1024;
    // Interval between two pings to a connection. 0 disables pings. Default: 25 s.
    std::chrono::milliseconds ping_interval{25'000};
    // How long a pong may take before the connection is closed. Default: 10 s.
    std::chrono::milliseconds pong_timeout{10'000};
    // How long a client may take to complete the opening handshake. Default: 5 s.
    std::chrono::milliseconds handshake_timeout{5'000};
    // How long a close handshake may take before the socket is dropped. Default: 3 s.
    std::chrono::milliseconds close_timeout{3'000};
    // Allowed values of the Origin header; empty allows any (and requests without one).
    // When set, a handshake whose Origin is not listed gets HTTP 403. Default: empty.
    std::vector<std::string> allowed_origins;
    // Kernel send buffer of each connection's socket, in bytes (SO_SNDBUF);
    // 0 keeps the kernel's default (autotuned, up to megabytes). A small one
    // makes a stalled client show up in queued() sooner and bounds the memory
    // the kernel holds for it. Default: 0.
    int socket_send_buffer_bytes = 0;
    // TCP_NODELAY on every connection (Nagle's algorithm off), so a frame is
    // written as soon as the hub hands it over. Batching is the hub's job
    // (one write per connection per tick, however many messages), and with
    // Nagle on, a write made while an earlier one is unacknowledged waits for
    // the peer's (possibly delayed) ACK: tens of milliseconds under load
    // (docs/transport.md has the measurement). Default: true.
    bool tcp_no_delay = true;
    // Start a connection's write on the thread that hands the frame over (the
    // hub's, during its fan-out) when the connection's strand is free, instead
    // of in a posted handler as websocketpp does. On one thread that saves a
    // pass of the io_context's queue per fan-out: measured at 10,000
    // subscribers, p99 about 300-360 ms instead of 440-550 ms
    // (docs/benchmarks.md). But every write of a fan-out then runs on the
    // hub's thread: with several threads running the io_context leave it off
    // so that they share the system calls. Default: false.
    bool inline_writes = false;
    // A client whose unread pongs (answers to its own pings) pass this many
    // bytes is closed with 1008 instead of answered: a ping flood from a client
    // that never reads cannot grow memory. Default: 256 KiB.
    std::size_t max_unread_control_bytes = 256 * 1024;
    // Backlog of the listening socket, in connections. Default: 1024.
    int listen_backlog = 1024;
    // SO_REUSEPORT, so several processes can serve one port. Default: false.
    bool reuse_port = false;
};

// A plain HTTP request, or the handshake of a WebSocket one, as hooks see it.
struct HttpRequest {
    std::string method;
    std::string path;   // without the query
    std::string query;  // after '?', undecoded; may carry tokens: never log it
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string remote_address;

    // The value of a header (name in any case), or "" when absent.
    std::string header(std::string name) const {
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
        const auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    }
    // The value of a query parameter (undecoded), or "" when absent.
    std::string query_param(std::string_view name) const {
        std::string_view q = query;
        while (!q.empty()) {
            const auto amp = q.find('&');
            const auto pair = q.substr(0, amp);
            const auto eq = pair.find('=');
            if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? std::string() : std::string(pair.substr(eq + 1));
            if (amp == std::string_view::npos) break;
            q.remove_prefix(amp + 1);
        }
        return {};
    }
};

struct HttpResponse {
    int status = 404;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body = "not found\n";
    std::vector<std::pair<std::string, std::string>> headers;
};

// What the authentication hook decides about a WebSocket handshake.
struct AuthDecision {
    bool accept = true;
    int status = 401;      // when refused: 401 (who are you?) or 403 (not you)
    ConnectionInfo info;   // when accepted: attached to the connection (user id, claims)

    static AuthDecision accepted(ConnectionInfo info = {}) { return {true, 0, std::move(info)}; }
    static AuthDecision refused(int status = 401) { return {false, status, {}}; }
};

using AuthHook = std::function<AuthDecision(const HttpRequest&)>;
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;
using LogSink = std::function<void(LogLevel, std::string_view)>;

class WebsocketppTransport {
public:
    WebsocketppTransport(asio::io_context& io, WebsocketppTransportConfig config)
        : io_(io), config_(std::move(config)), control_(asio::make_strand(io)), ping_timer_(control_) {
        server_.init_asio(&io_);
        server_.set_reuse_addr(true);
        server_.set_listen_backlog(config_.listen_backlog);
        server_.set_max_message_size(config_.max_message_bytes);
        server_.set_open_handshake_timeout(static_cast<long>(config_.handshake_timeout.count()));
        server_.set_close_handshake_timeout(static_cast<long>(config_.close_timeout.count()));
        server_.set_pong_timeout(static_cast<long>(config_.pong_timeout.count()));
        server_.clear_access_channels(websocketpp::log::alevel::all);
        server_.clear_error_channels(websocketpp::log::elevel::all);
        set_log_level(LogLevel::info);

        using websocketpp::connection_hdl;
        server_.set_validate_handler([this](connection_hdl hdl) { return on_validate(hdl); });
        server_.set_http_handler([this](connection_hdl hdl) { on_http(hdl); });
        server_.set_open_handler([this](connection_hdl hdl) { on_open(hdl); });
        server_.set_close_handler([this](connection_hdl hdl) { on_gone(hdl); });
        server_.set_fail_handler([this](connection_hdl hdl) { on_gone(hdl); });
        server_.set_message_handler(
            [this](connection_hdl hdl, detail::wspp_message_ptr msg) { on_ws_message(hdl, std::move(msg)); });
        server_.set_ping_handler([this](connection_hdl hdl, std::string payload) {
            // Runs on the connection's strand. websocketpp answers every ping with
            // a pong whether or not the client reads: a client that floods pings
            // and never reads would grow the queue without bound, so past the
            // limit it is closed instead of answered.
            const auto con = server_.get_con_from_hdl(hdl);
            if (con->backlog_bytes() > config_.max_unread_control_bytes) {
                log(LogLevel::info, "closing a connection that sends pings but reads no pongs");
                std::error_code ignored;
                con->close(websocketpp::close::status::policy_violation, "ping flood", ignored);
                return false;
            }
            con->count_enqueued(2 + payload.size());
            return true;
        });
        // After accept: the socket websocketpp's init handler sees is not open yet.
        server_.set_tcp_post_init_handler([this](connection_hdl hdl) {
            std::error_code ignored;
            const auto con = server_.get_con_from_hdl(hdl);
            con->wshub_inline_writes = config_.inline_writes;
            auto& socket = con->get_raw_socket();
            socket.set_option(asio::ip::tcp::no_delay(config_.tcp_no_delay), ignored);
            if (config_.socket_send_buffer_bytes > 0) {
                socket.set_option(asio::socket_base::send_buffer_size(config_.socket_send_buffer_bytes), ignored);
            }
        });
        server_.set_pong_handler([this](connection_hdl hdl, std::string) {
            if (auto con = server_.get_con_from_hdl(hdl)) con->wshub_awaiting_pong.store(false);
        });
        server_.set_pong_timeout_handler([this](connection_hdl hdl, std::string) {
            log(LogLevel::info, "closing a connection whose pong did not come in time");
            std::error_code ec;
            server_.close(hdl, websocketpp::close::status::policy_violation, "pong timeout", ec);
        });
    }

    WebsocketppTransport(const WebsocketppTransport&) = delete;
    WebsocketppTransport& operator=(const WebsocketppTransport&) = delete;

    ~WebsocketppTransport() {
        std::error_code ec;
        if (server_.is_listening()) server_.stop_listening(ec);
    }

    // ---- setup, before the io_context runs ----------------------------------

    void set_auth_hook(AuthHook hook) { auth_hook_ = std::move(hook); }
    void set_http_handler(HttpHandler handler) { http_handler_ = std::move(handler); }

    // Where this transport's and websocketpp's log lines go. Tokens never do.
    void set_log_sink(LogSink sink) {
        log_sink_ = std::move(sink);
        auto forward = [this](bool is_access, websocketpp::log::level channel, const std::string& line) {
            if (!log_sink_) return;
            LogLevel level = LogLevel::debug;
            if (!is_access) {
                if (channel & websocketpp::log::elevel::fatal) {
                    level = LogLevel::error;
                } else if ((channel & websocketpp::log::elevel::rerror) && !is_peer_gone(line)) {
                    level = LogLevel::warn;
                }
            }
            log_sink_(level, std::string(is_access ? "websocketpp: " : "websocketpp error: ") + line);
        };
        server_.get_alog().set_sink(forward);
        server_.get_elog().set_sink(forward);
    }

    // websocketpp reports a client that left without a closing handshake
    // (end of file, reset, broken pipe) as an error. It is the everyday end
    // of a mobile or crashed client, not a fault here: debug, or a busy
    // server writes a warning per disconnect.
    static bool is_peer_gone(const std::string& line) {
        for (const char* phrase : {"(End of File)", "Connection reset by peer", "Broken pipe"}) {
            if (line.find(phrase) != std::string::npos) return true;
        }
        return false;
    }

    // Which of websocketpp's channels are written: at debug, connection and
    // HTTP lines and informational errors; otherwise only real errors. Never per frame.
    void set_log_level(LogLevel level) {
        server_.clear_access_channels(websocketpp::log::alevel::all);
        server_.clear_error_channels(websocketpp::log::elevel::all);
        if (level == LogLevel::off) return;
        server_.set_error_channels(websocketpp::log::elevel::rerror | websocketpp::log::elevel::fatal);
        if (level == LogLevel::debug) {
            server_.set_access_channels(websocketpp::log::alevel::connect | websocketpp::log::alevel::disconnect |
                                        websocketpp::log::alevel::http | websocketpp::log::alevel::fail);
            server_.set_error_channels(websocketpp::log::elevel::info | websocketpp::log::elevel::warn);
        }
    }

    // Binds and starts accepting. Returns the error (address in use, bad host) instead of throwing.
    std::error_code listen() {
        std::error_code ec;
        const auto address = asio::ip::make_address(config_.host, ec);
        if (ec) return ec;
        if (config_.reuse_port) {
            server_.set_tcp_pre_bind_handler([](std::shared_ptr<asio::ip::tcp::acceptor> acceptor) {
                std::error_code ignored;
                const int on = 1;
                ::setsockopt(acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
                return ignored;
            });
        }
        server_.listen(asio::ip::tcp::endpoint(address, config_.port), ec);
        if (ec) return ec;
        server_.start_accept(ec);
        if (ec) return ec;
        local_port_ = server_.get_local_endpoint(ec).port();
        if (config_.ping_interval.count() > 0) arm_ping_timer();
        return ec;
    }

    // The port actually bound (useful with port 0).
    std::uint16_t local_port() const noexcept { return local_port_; }

    // Connections open now (any thread).
    std::size_t connection_count() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return connections_.size();
    }

    // Prepared messages built so far: one per fan-out, whatever the number of recipients.
    std::uint64_t prepared_messages() const noexcept { return prepared_.load(std::memory_order_relaxed); }

    // ---- the Transport concept ----------------------------------------------

    void set_handlers(TransportHandlers handlers) { handlers_ = std::move(handlers); }

    // A batch frame goes out as one prepared message holding all its frames
    // back to back, shared by every recipient: one write per connection.
    static constexpr bool sends_batches = true;

    void send(ConnectionId id, const SharedFrame& frame) {
        const auto con = find(id);
        if (!con) return;
        const auto& message = prepared(*frame);
        const std::uint64_t size = message->get_header().size() + message->get_payload().size();
        const std::uint64_t frames = frame->messages();
        con->count_enqueued(size, frames);
        const std::error_code ec = con->send(message);
        if (ec) con->uncount_enqueued(size, frames);  // not open any more
    }

    void close(ConnectionId id, std::uint16_t code, std::string_view reason) {
        const auto con = find(id);
        if (!con) return;
        // websocketpp's close() touches state its own strand also writes: run it there.
        con->run_on_strand([con, code, reason = std::string(reason)] {
            std::error_code ec;
            con->close(code, reason, ec);
            if (!ec) con->count_enqueued(4 + std::min<std::size_t>(reason.size(), 123));  // reasons are cut at 123
        });
    }

    void terminate(ConnectionId id) {
        const auto con = find(id);
        if (!con) return;
        // terminate() is not thread-safe: run it on the connection's own strand.
        con->run_on_strand([con] { con->terminate(websocketpp::lib::error_code()); });
    }

    QueueStats queued(ConnectionId id) const {
        const auto con = find(id);
        if (!con) return {};
        QueueStats stats;
        stats.bytes = static_cast<std::size_t>(con->backlog_bytes());
        const std::uint64_t written = con->frames_written.load(std::memory_order_relaxed);
        const std::uint64_t enqueued = con->frames_enqueued.load(std::memory_order_relaxed);
        stats.messages = enqueued > written ? static_cast<std::size_t>(enqueued - written) : 0;
        return stats;
    }

    // From now on every handshake is refused with 503 (and plain HTTP requests
    // answered 503 too). The listening socket itself is closed only by the
    // destructor: websocketpp re-arms its accept from whichever thread accepted
    // last, so closing it while the io_context runs on several threads would race.
    void stop_accepting() {
        stopping_.store(true);
        asio::post(control_, [this] { ping_timer_.cancel(); });
        log(LogLevel::info, "stopped accepting connections");
    }

private:
    using connection_hdl = websocketpp::connection_hdl;
    using connection_ptr = detail::wspp_connection_ptr;

    void log(LogLevel level, std::string_view line) const {
        if (log_sink_) log_sink_(level, line);
    }

    connection_ptr find(ConnectionId id) const {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto it = connections_.find(id);
        return it == connections_.end() ? connection_ptr() : it->second;
    }

    // The websocketpp message for a frame, built once and cached in the frame.
    const detail::wspp_message_ptr& prepared(const OutFrame& frame) {
        auto* cached = static_cast<detail::wspp_message_ptr*>(frame.transport_cache.get());
        if (cached != nullptr) return *cached;
        auto message = std::make_shared<detail::wspp_config::message_type>(
            detail::wspp_config::con_msg_manager_type::ptr(), websocketpp::frame::opcode::text, 0);
        if (frame.batch.empty()) {
            message->set_header(detail::text_frame_header(frame.payload.size()));
            message->set_payload(frame.payload);
        } else {
            // No header of its own: the payload is the frames, each with its
            // header (the byte counter in wspp_config.hpp relies on the empty header).
            std::string frames;
            frames.reserve(frame.payload_bytes() + 10 * frame.batch.size());
            for (const auto& part : frame.batch) {
                frames += detail::text_frame_header(part->payload.size());
                frames += part->payload;
            }
            message->set_payload(std::move(frames));
        }
        message->set_prepared(true);
        auto holder = std::make_shared<detail::wspp_message_ptr>(std::move(message));
        cached = holder.get();
        frame.transport_cache = std::move(holder);
        prepared_.fetch_add(1, std::memory_order_relaxed);
        return *cached;
    }

    static HttpRequest request_of(const connection_ptr& con) {
        HttpRequest request;
        const auto& req = con->get_request();
        request.method = req.get_method();
        const std::string& resource = con->get_resource();
        const auto question = resource.find('?');
        request.path = resource.substr(0, question);
        if (question != std::string::npos) request.query = resource.substr(question + 1);
        for (const auto& [name, value] : req.get_headers()) {
            std::string lower = name;
            std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
            request.headers[lower] = value;
        }
        std::error_code ec;
        const auto remote = con->get_raw_socket().remote_endpoint(ec);
        if (!ec) request.remote_address = remote.address().to_string() + ":" + std::to_string(remote.port());
        return request;
    }

    bool on_validate(connection_hdl hdl) {
        const auto con = server_.get_con_from_hdl(hdl);
        if (stopping_.load()) {
            con->set_status(websocketpp::http::status_code::service_unavailable);
            return false;
        }
        HttpRequest request = request_of(con);
        if (request.path != config_.websocket_path) {
            con->set_status(websocketpp::http::status_code::not_found);
            return false;
        }
        if (!config_.allowed_origins.empty()) {
            const std::string origin = request.header("origin");
            if (std::find(config_.allowed_origins.begin(), config_.allowed_origins.end(), origin) ==
                config_.allowed_origins.end()) {
                log(LogLevel::info, "refused a handshake from a foreign origin (403)");
                con->set_status(websocketpp::http::status_code::forbidden);
                return false;
            }
        }
        AuthDecision decision = auth_hook_ ? auth_hook_(request) : AuthDecision::accepted();
        if (!decision.accept) {
            const int status = decision.status == 403 ? 403 : 401;
            con->set_status(static_cast<websocketpp::http::status_code::value>(status));
            return false;
        }
        decision.info.remote_address = request.remote_address;
        con->wshub_info = std::move(decision.info);
        con->wshub_id = next_id_.fetch_add(1, std::memory_order_relaxed);
        return true;
    }

    void on_http(connection_hdl hdl) {
        const auto con = server_.get_con_from_hdl(hdl);
        HttpResponse response = http_handler_ ? http_handler_(request_of(con)) : HttpResponse{};
        con->set_status(static_cast<websocketpp::http::status_code::value>(response.status));
        con->replace_header("Content-Type", response.content_type);
        // websocketpp closes the socket after every plain HTTP response: say so,
        // or clients that reuse connections find it closed under them.
        con->replace_header("Connection", "close");
        for (const auto& [name, value] : response.headers) con->replace_header(name, value);
        con->set_body(response.body);
    }

    void on_open(connection_hdl hdl) {
        const auto con = server_.get_con_from_hdl(hdl);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            connections_[con->wshub_id] = con;
        }
        con->wshub_opened.store(true);
        if (handlers_.on_open) handlers_.on_open(con->wshub_id, con->wshub_info);
        release_handshake(*con);
    }

    // websocketpp keeps the parsed handshake request and response for the
    // connection's whole life, though nothing reads them after the open
    // handler (the hub took what it needs in on_validate). A browser's request
    // with cookies is kilobytes per idle connection; drop both. websocketpp
    // offers only const access; the members themselves are not const.
    static void release_handshake(detail::wspp_server::connection_type& con) {
        using request_type = detail::wspp_server::connection_type::request_type;
        using response_type = detail::wspp_server::connection_type::response_type;
        const_cast<request_type&>(con.get_request()) = request_type();
        const_cast<response_type&>(con.get_response()) = response_type();
    }

    void on_ws_message(connection_hdl hdl, detail::wspp_message_ptr msg) {
        const auto con = server_.get_con_from_hdl(hdl);
        const auto kind = msg->get_opcode() == websocketpp::frame::opcode::text ? MessageKind::text : MessageKind::binary;
        if (handlers_.on_message) handlers_.on_message(con->wshub_id, std::move(msg->get_raw_payload()), kind);
    }

    // Close and fail both end here; only connections that opened are reported.
    void on_gone(connection_hdl hdl) {
        const auto con = server_.get_con_from_hdl(hdl);
        if (!con->wshub_opened.load() || con->wshub_closed.exchange(true)) return;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            connections_.erase(con->wshub_id);
        }
        if (handlers_.on_close) handlers_.on_close(con->wshub_id);
    }

    // Keepalive: every second, ping the connections whose interval has passed.
    // One timer for all connections; the pings of one interval spread over it.
    void arm_ping_timer() {
        ping_timer_.expires_after(std::min<std::chrono::milliseconds>(config_.ping_interval, std::chrono::seconds(1)));
        ping_timer_.async_wait([this](std::error_code ec) {
            if (ec || stopping_.load()) return;
            const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count();
            std::vector<connection_ptr> due;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                for (const auto& [id, con] : connections_) {
                    auto last = con->wshub_last_ping_ms.load(std::memory_order_relaxed);
                    if (last == 0) {
                        // First sighting: start its interval now, at a spread-out phase.
                        con->wshub_last_ping_ms.store(now - static_cast<std::int64_t>(id % 1000),
                                                      std::memory_order_relaxed);
                        continue;
                    }
                    // websocketpp cancels the pong timer of an unanswered ping when it
                    // sends the next one, so never ping a connection that still owes a pong.
                    if (now - last >= config_.ping_interval.count() && !con->wshub_awaiting_pong.load()) {
                        con->wshub_awaiting_pong.store(true);
                        con->wshub_last_ping_ms.store(now, std::memory_order_relaxed);
                        due.push_back(con);
                    }
                }
            }
            for (const auto& con : due) {
                con->run_on_strand([con] {
                    websocketpp::lib::error_code ec;
                    con->ping("", ec);
                    if (!ec) con->count_enqueued(2);
                });
            }
            arm_ping_timer();
        });
    }

    asio::io_context& io_;
    WebsocketppTransportConfig config_;
    detail::wspp_server server_;
    asio::strand<asio::io_context::executor_type> control_;
    asio::steady_timer ping_timer_;
    std::atomic<bool> stopping_{false};
    std::uint16_t local_port_ = 0;

    TransportHandlers handlers_;
    AuthHook auth_hook_;
    HttpHandler http_handler_;
    LogSink log_sink_;

    mutable std::mutex mutex_;
    std::unordered_map<ConnectionId, connection_ptr> connections_;
    std::atomic<ConnectionId> next_id_{1};
    std::atomic<std::uint64_t> prepared_{0};
};

}  // namespace wshub
