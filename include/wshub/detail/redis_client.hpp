// wshub/detail/redis_client.hpp: one Redis command connection that comes back by itself.
//
// The connection registry needs a plain command connection (SET, MGET,
// PUBLISH, ...) that survives Redis restarts: this wraps a RedisConnection,
// resolves the host asynchronously before every attempt (hiredis 0.14 would
// block the loop on a name lookup), reconnects forever with capped exponential
// backoff and full jitter, and tells its owner when it is up (so the owner can
// write its state again: a restarted Redis has forgotten it) and when it is down.
//
// While down, command() fails at once with error::unavailable: nothing is
// queued for later, so callers never wait on a dead link and memory stays bounded.
//
// Thread safety: not thread-safe. Every member must be called from the
// executor given to the constructor; handlers run on that executor, never
// inside the call that caused them.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "wshub/detail/backoff.hpp"
#include "wshub/detail/redis_connection.hpp"
#include "wshub/detail/redis_url.hpp"
#include "wshub/error.hpp"
#include "wshub/logger.hpp"

namespace wshub::detail {

struct RedisClientOptions {
    std::string url = "redis://127.0.0.1:6379";        // as in RedisPubSubConfig::url
    std::chrono::milliseconds connect_timeout{2000};    // TCP connect + AUTH + SELECT + PING
    std::chrono::milliseconds command_timeout{2000};    // per command; a miss closes the link
    std::chrono::milliseconds reconnect_initial_delay{100};
    std::chrono::milliseconds reconnect_max_delay{1000};
};

class RedisClient {
public:
    using Reply = RedisConnection::Reply;
    using ReplyHandler = RedisConnection::ReplyHandler;
    using LogSink = std::function<void(LogLevel, std::string_view)>;

    // Throws std::invalid_argument for a bad URL (setup misuse). Does not connect until start().
    RedisClient(asio::any_io_executor executor, RedisClientOptions options, std::string name, LogSink log = {})
        : executor_(std::move(executor)),
          name_(std::move(name)),
          log_(std::move(log)),
          backoff_(options.reconnect_initial_delay, options.reconnect_max_delay),
          reconnect_timer_(executor_),
          resolver_(executor_) {
        const auto parsed = parse_redis_url(options.url);
        if (!parsed.url) throw std::invalid_argument("wshub: bad Redis URL: " + parsed.error);
        host_ = parsed.url->host;
        endpoint_.host = parsed.url->host;
        endpoint_.port = parsed.url->port;
        endpoint_.unix_path = parsed.url->unix_path;
        endpoint_.password = parsed.url->password;
        endpoint_.db = parsed.url->db;
        endpoint_.connect_timeout = options.connect_timeout;
        endpoint_.command_timeout = options.command_timeout;
    }

    RedisClient(const RedisClient&) = delete;
    RedisClient& operator=(const RedisClient&) = delete;

    ~RedisClient() {
        alive_.reset();
        closed_ = true;
        reconnect_timer_.cancel();
        resolver_.cancel();
        drop();
    }

    // on_up runs each time a connection is established (the first one too);
    // on_down each time an established one is lost (not after close()).
    void set_handlers(std::function<void()> on_up, std::function<void()> on_down) {
        on_up_ = std::move(on_up);
        on_down_ = std::move(on_down);
    }

    void start() {
        if (started_ || closed_) return;
        started_ = true;
        asio::post(executor_, [this, alive = std::weak_ptr<char>(alive_)] {
            if (alive.lock()) connect();
        });
    }

    bool up() const noexcept { return up_; }

    // One command; done(ec, reply) later, on the executor. While down:
    // error::unavailable at once. A "-ERR" reply is a reply (type REDIS_REPLY_ERROR).
    void command(const std::vector<std::string>& args, ReplyHandler done) {
        if (!up_ || !conn_) {
            asio::post(executor_, [done = std::move(done)] {
                if (done) done(make_error_code(error::unavailable), nullptr);
            });
            return;
        }
        conn_->command(args, std::move(done));
    }

    // Commands sent and not yet answered (0 while down).
    std::size_t pending_commands() const noexcept { return conn_ ? conn_->pending_commands() : 0; }

    // Disconnects for good; pending commands fail with operation_aborted. Safe to call twice.
    void close() {
        if (closed_) return;
        closed_ = true;
        up_ = false;
        reconnect_timer_.cancel();
        resolver_.cancel();
        drop();
    }

private:
    void log(LogLevel level, const std::string& line) const {
        if (log_) log_(level, name_ + ": " + line);
    }

    void connect() {
        if (closed_) return;
        std::error_code not_ip;
        asio::ip::make_address(host_, not_ip);
        if (!endpoint_.unix_path.empty() || !not_ip) return connect_to(host_);
        const auto generation = ++generation_;
        resolver_.async_resolve(host_, std::to_string(endpoint_.port),
                                [this, generation, alive = std::weak_ptr<char>(alive_)](
                                    std::error_code ec, asio::ip::tcp::resolver::results_type results) {
                                    if (!alive.lock() || generation != generation_) return;
                                    if (ec || results.empty()) {
                                        log(LogLevel::warn, "cannot resolve " + host_);
                                        return retry();
                                    }
                                    connect_to(results.begin()->endpoint().address().to_string());
                                });
    }

    void connect_to(const std::string& address) {
        if (closed_) return;
        const auto generation = ++generation_;
        endpoint_.host = address;
        conn_ = RedisConnection::create(executor_, endpoint_);
        conn_->connect([this, generation, alive = std::weak_ptr<char>(alive_)](std::error_code ec) {
            if (!alive.lock() || generation != generation_) return;
            if (ec) {
                if (!failed_once_) log(LogLevel::warn, "cannot connect: " + ec.message());
                failed_once_ = true;
                drop();
                return retry();
            }
            conn_->set_disconnect_handler([this, generation, alive = std::weak_ptr<char>(alive_)](std::error_code lost) {
                if (!alive.lock() || generation != generation_ || closed_) return;
                log(LogLevel::warn, "connection lost: " + lost.message());
                up_ = false;
                drop();
                if (on_down_) on_down_();
                retry();
            });
            up_ = true;
            failed_once_ = false;
            backoff_.reset();
            log(LogLevel::info, "up");
            if (on_up_) on_up_();
        });
    }

    void retry() {
        if (closed_) return;
        reconnect_timer_.expires_after(backoff_.next());
        reconnect_timer_.async_wait([this, alive = std::weak_ptr<char>(alive_)](std::error_code ec) {
            if (!ec && alive.lock()) connect();
        });
    }

    void drop() {
        ++generation_;  // late callbacks of the old connection are ignored
        if (!conn_) return;
        conn_->set_disconnect_handler({});
        conn_->close();
        conn_.reset();
    }

    asio::any_io_executor executor_;
    std::string name_;
    LogSink log_;
    RedisEndpoint endpoint_;
    std::string host_;
    Backoff backoff_;
    asio::steady_timer reconnect_timer_;
    asio::ip::tcp::resolver resolver_;
    std::function<void()> on_up_;
    std::function<void()> on_down_;
    std::shared_ptr<RedisConnection> conn_;
    std::uint64_t generation_ = 0;
    bool started_ = false;
    bool closed_ = false;
    bool up_ = false;
    bool failed_once_ = false;
    std::shared_ptr<char> alive_ = std::make_shared<char>(0);
};

}  // namespace wshub::detail
