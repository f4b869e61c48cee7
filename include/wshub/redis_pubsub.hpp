// wshub/redis_pubsub.hpp: the PubSub that ties instances together through Redis.
//
// hiredis on the hub's io_context (detail/redis_connection.hpp), two
// connections per Redis server:
//   - one subscriber connection for every channel of this instance (never one
//     per channel, never PSUBSCRIBE); SUBSCRIBE/UNSUBSCRIBE are batched: the
//     requests of one event-loop tick go out together, at most
//     max_channels_per_command channels per command;
//   - one publisher connection, pipelined; a failed PUBLISH reports
//     error::unavailable to its caller, never silence.
// It reconnects forever with capped exponential backoff and full jitter; after
// a reconnect it subscribes again every channel that was subscribed, in
// batches, then reports them through on_resubscribed (the hub tells their
// subscribers `gap`). A health check publishes on a channel of its own and
// expects to receive it back on the subscriber connection within
// health_check_timeout: a Redis that is frozen (SIGSTOP, a full machine) rather
// than gone is detected and treated as down, and so is a subscriber
// connection that looks alive but delivers nothing. Redis closing the
// subscriber (client-output-buffer-limit pubsub, CLIENT KILL) is just another
// disconnect.
//
// While down: subscribe fails at once with error::unavailable (nothing is
// kept), unsubscribe succeeds (the channel is simply not restored), publish
// fails at once with error::unavailable.
//
// An unsubscribe of a topic whose subscribe is not confirmed yet cancels that
// subscribe: its callers hear std::errc::operation_canceled (not subscribed).
// When the SUBSCRIBE was still queued for this tick, nothing at all is sent to
// Redis for the topic and the unsubscribe completes at once.
//
// Thread safety: every member must be called from the executor given to the
// constructor (pass the hub's io_context executor and run that io_context on
// one thread, or give it a strand); handlers run on that executor.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
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
#include "wshub/pubsub_concept.hpp"

namespace wshub {

struct RedisPubSubConfig {
    // Where Redis is: redis://[:password@]host[:port][/db] or unix:///path[?db=N&password=P].
    // Default: "redis://127.0.0.1:6379".
    std::string url = "redis://127.0.0.1:6379";
    // How long a connection attempt (TCP, AUTH, SELECT) may take. Default: 2 s.
    std::chrono::milliseconds connect_timeout{2000};
    // How long a command may wait for its reply before the link counts as dead. Default: 2 s.
    std::chrono::milliseconds command_timeout{2000};
    // First reconnect delay bound; doubles per failed attempt up to reconnect_max_delay,
    // each delay drawn at random below the bound (full jitter). Default: 100 ms.
    std::chrono::milliseconds reconnect_initial_delay{100};
    // Largest reconnect delay bound. 1 s keeps the time from Redis being back
    // to every instance resubscribed under ~1 s plus the resubscribe itself,
    // at the cost of at most one attempt per second during a long outage. Default: 1 s.
    std::chrono::milliseconds reconnect_max_delay{1000};
    // How often the health check publishes its probe while up. Default: 1 s.
    std::chrono::milliseconds health_check_interval{1000};
    // How long the probe may take to come back on the subscriber before Redis
    // counts as down (frozen, or the subscriber deaf). Default: 3 s.
    std::chrono::milliseconds health_check_timeout{3000};
    // Channels per SUBSCRIBE/UNSUBSCRIBE command: batches stay bounded. Default: 1000.
    std::size_t max_channels_per_command = 1000;
    // The health probe's channel; must be unique per instance. Empty: "wshub:health:<random>". Default: empty.
    std::string health_channel;
};

// Counters for metrics and tests (a snapshot; plain values).
struct RedisPubSubStats {
    std::uint64_t subscribe_commands = 0;    // SUBSCRIBE commands sent (each for up to max_channels_per_command channels)
    std::uint64_t unsubscribe_commands = 0;  // UNSUBSCRIBE commands sent
    std::uint64_t reconnects = 0;            // successful reconnects after a loss
    std::uint64_t health_failures = 0;       // times the health check declared Redis down
    std::size_t channels = 0;                // channels subscribed now (without the health channel)
};

class RedisPubSub {
public:
    using LogSink = std::function<void(LogLevel, std::string_view)>;

    // Throws std::invalid_argument for a bad URL (setup misuse). Starts connecting at once.
    RedisPubSub(asio::any_io_executor executor, RedisPubSubConfig config, LogSink log = {})
        : executor_(std::move(executor)),
          config_(std::move(config)),
          log_(std::move(log)),
          backoff_(config_.reconnect_initial_delay, config_.reconnect_max_delay),
          reconnect_timer_(executor_),
          health_timer_(executor_) {
        const auto parsed = detail::parse_redis_url(config_.url);
        if (!parsed.url) throw std::invalid_argument("wshub: bad Redis URL: " + parsed.error);
        host_ = parsed.url->host;
        endpoint_.host = parsed.url->host;
        endpoint_.port = parsed.url->port;
        endpoint_.unix_path = parsed.url->unix_path;
        endpoint_.password = parsed.url->password;
        endpoint_.db = parsed.url->db;
        endpoint_.connect_timeout = config_.connect_timeout;
        endpoint_.command_timeout = config_.command_timeout;
        if (config_.health_channel.empty()) config_.health_channel = "wshub:health:" + random_suffix();
        if (config_.max_channels_per_command == 0) config_.max_channels_per_command = 1;
        asio::post(executor_, [alive = std::weak_ptr<char>(alive_), this] {
            if (alive.lock()) connect();
        });
    }

    RedisPubSub(const RedisPubSub&) = delete;
    RedisPubSub& operator=(const RedisPubSub&) = delete;

    ~RedisPubSub() {
        closed_ = true;
        alive_.reset();
        reconnect_timer_.cancel();
        health_timer_.cancel();
        resolver_.cancel();
        drop_connections();
    }

    // ---- the PubSub concept -------------------------------------------------

    void set_handlers(PubSubHandlers handlers) { handlers_ = std::move(handlers); }

    void subscribe(const std::string& topic, Completion done) {
        if (state_ != PubSubState::up) return complete(std::move(done), error::unavailable);
        const auto [it, inserted] = topics_.try_emplace(topic);
        auto& entry = it->second;
        if (entry.phase == Phase::subscribed) return complete(std::move(done), {});
        if (!inserted && entry.phase == Phase::subscribing) {
            // Already asked for (queued or sent): one SUBSCRIBE answers every caller.
            entry.waiters.push_back(std::move(done));
            return;
        }
        entry.phase = Phase::subscribing;
        entry.waiters.push_back(std::move(done));
        to_subscribe_.push_back(topic);
        schedule_flush();
    }

    void unsubscribe(const std::string& topic, Completion done) {
        const auto it = topics_.find(topic);
        if (it == topics_.end()) return complete(std::move(done), {});
        if (state_ != PubSubState::up) {
            // Not restored after the reconnect: that is all an unsubscribe needs.
            fail_waiters(it->second, error::unavailable);
            topics_.erase(it);
            return complete(std::move(done), {});
        }
        if (it->second.phase == Phase::subscribing) {
            // The subscribe is cancelled before it was confirmed: its callers
            // hear an error (success would mean subscribed), never success.
            for (auto& w : it->second.waiters) complete(std::move(w), cancelled());
            it->second.waiters.clear();
            const auto queued = std::find(to_subscribe_.begin(), to_subscribe_.end(), topic);
            if (queued != to_subscribe_.end()) {
                // Not sent yet: nothing to undo in Redis, nothing to send.
                to_subscribe_.erase(queued);
                topics_.erase(it);
                return complete(std::move(done), {});
            }
            // The SUBSCRIBE is out: the UNSUBSCRIBE below follows it, and its
            // confirmation (ignored in phase unsubscribing) changes nothing.
        }
        if (it->second.phase == Phase::restoring) restore_done(topic);  // no longer waited for
        if (it->second.phase == Phase::subscribed) --stats_.channels;
        it->second.phase = Phase::unsubscribing;
        it->second.waiters.push_back(std::move(done));
        to_unsubscribe_.push_back(topic);
        schedule_flush();
    }

    void publish(const std::string& topic, std::string payload, Completion done) {
        if (state_ != PubSubState::up || !publisher_) return complete(std::move(done), error::unavailable);
        publisher_->command({"PUBLISH", topic, std::move(payload)},
                            [done = std::move(done)](std::error_code ec, detail::RedisConnection::Reply reply) {
                                if (!ec && reply != nullptr && reply->type == REDIS_REPLY_ERROR) {
                                    ec = make_error_code(error::unavailable);
                                }
                                if (done) done(ec ? make_error_code(error::unavailable) : std::error_code{});
                            });
    }

    PubSubState state() const noexcept { return state_; }

    // ---- beyond the concept ---------------------------------------------------

    // Disconnects for good (after the hub's shutdown). Pending calls complete with unavailable.
    void close() {
        if (closed_) return;
        closed_ = true;
        reconnect_timer_.cancel();
        health_timer_.cancel();
        go_down("closed", false);
    }

    // Any thread (a /metrics handler): the counters are atomics.
    RedisPubSubStats stats() const {
        RedisPubSubStats s;
        s.subscribe_commands = stats_.subscribe_commands.load(std::memory_order_relaxed);
        s.unsubscribe_commands = stats_.unsubscribe_commands.load(std::memory_order_relaxed);
        s.reconnects = stats_.reconnects.load(std::memory_order_relaxed);
        s.health_failures = stats_.health_failures.load(std::memory_order_relaxed);
        s.channels = static_cast<std::size_t>(stats_.channels.load(std::memory_order_relaxed));
        return s;
    }

private:
    enum class Phase : std::uint8_t { subscribing, subscribed, unsubscribing, restoring };

    struct Topic {
        Phase phase = Phase::subscribing;
        std::vector<Completion> waiters;
    };

    void log(LogLevel level, const std::string& line) const {
        if (log_) log_(level, line);
    }

    static std::string random_suffix() {
        std::random_device rd;
        std::uniform_int_distribution<int> hex(0, 15);
        std::string s(16, '0');
        for (char& c : s) c = "0123456789abcdef"[hex(rd)];
        return s;
    }

    // State changes reach the handler later, never inside a call that caused
    // them (close(), or an unsubscribe that completes a restore).
    void notify_state(PubSubState state) {
        asio::post(executor_, [this, state, alive = std::weak_ptr<char>(alive_)] {
            if (alive.lock() && handlers_.on_state) handlers_.on_state(state);
        });
    }

    void complete(Completion done, std::error_code ec) {
        if (done) asio::post(executor_, [done = std::move(done), ec] { done(ec); });
    }

    // What a subscribe's callers hear when an unsubscribe overtook it.
    static std::error_code cancelled() { return std::make_error_code(std::errc::operation_canceled); }

    void fail_waiters(Topic& topic, error code) {
        for (auto& w : topic.waiters) complete(std::move(w), make_error_code(code));
        topic.waiters.clear();
    }

    // ---- connecting -----------------------------------------------------------

    // hiredis 0.14 would resolve a host name with a blocking lookup on the
    // event loop; resolve it here, asynchronously, before every attempt (so a
    // Redis that moved to another address is found again).
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
                                        log(LogLevel::warn, "redis: cannot resolve " + host_ + ": " +
                                                                (ec ? ec.message() : std::string("no address")));
                                        return go_down("name resolution failed", true);
                                    }
                                    connect_to(results.begin()->endpoint().address().to_string());
                                });
    }

    void connect_to(const std::string& address) {
        if (closed_) return;
        ++generation_;
        const auto generation = generation_;
        endpoint_.host = address;
        subscriber_ = detail::RedisConnection::create(executor_, endpoint_);
        publisher_ = detail::RedisConnection::create(executor_, endpoint_);
        connected_count_ = 0;
        for (auto* conn : {&subscriber_, &publisher_}) {
            (*conn)->connect([this, generation, alive = std::weak_ptr<char>(alive_)](std::error_code ec) {
                if (!alive.lock() || generation != generation_) return;
                if (ec) {
                    log(LogLevel::warn, "redis: cannot connect: " + ec.message());
                    return go_down("connect failed", true);
                }
                if (++connected_count_ == 2) on_connected();
            });
        }
    }

    void on_connected() {
        const auto generation = generation_;
        const auto alive = std::weak_ptr<char>(alive_);
        for (auto* conn : {&subscriber_, &publisher_}) {
            (*conn)->set_disconnect_handler([this, generation, alive](std::error_code ec) {
                if (!alive.lock() || generation != generation_) return;
                log(LogLevel::warn, "redis: connection lost: " + ec.message());
                go_down("connection lost", true);
            });
        }
        subscriber_->set_push_handler([this, generation, alive](detail::RedisConnection::Reply reply) {
            if (!alive.lock() || generation != generation_) return;
            on_push(reply);
        });
        const bool was_lost = ever_up_;
        ever_up_ = true;
        backoff_.reset();
        // Restore what was subscribed before the loss, in batches, plus the health channel.
        std::vector<std::string> restore;
        for (auto& [name, entry] : topics_) {
            if (entry.phase == Phase::restoring) restore.push_back(name);
        }
        restore_pending_ = std::unordered_set<std::string>(restore.begin(), restore.end());
        restored_.clear();
        subscriber_->subscribe({config_.health_channel});
        for (std::size_t i = 0; i < restore.size(); i += config_.max_channels_per_command) {
            const auto end = std::min(restore.size(), i + config_.max_channels_per_command);
            subscriber_->subscribe(std::vector<std::string>(restore.begin() + static_cast<std::ptrdiff_t>(i),
                                                            restore.begin() + static_cast<std::ptrdiff_t>(end)));
            ++stats_.subscribe_commands;
        }
        state_ = PubSubState::up;
        last_probe_seen_ = std::chrono::steady_clock::now();
        if (was_lost) ++stats_.reconnects;
        log(LogLevel::info, std::string("redis: up") +
                                (restore.empty() ? "" : ", resubscribing " + std::to_string(restore.size()) + " channels"));
        notify_state(PubSubState::up);

        arm_health_check();
    }

    // Every failure ends here: both connections go, waiting calls learn it, and
    // (unless closing) a reconnect is scheduled.
    void go_down(const char* why, bool reconnect) {
        ++generation_;  // late callbacks of the old connections are ignored
        health_timer_.cancel();
        drop_connections();
        to_subscribe_.clear();
        to_unsubscribe_.clear();
        restore_pending_.clear();
        restored_.clear();
        for (auto it = topics_.begin(); it != topics_.end();) {
            Topic& topic = it->second;
            if (topic.phase == Phase::subscribing) {
                fail_waiters(topic, error::unavailable);  // not kept: the caller hears unavailable
                it = topics_.erase(it);
            } else if (topic.phase == Phase::unsubscribing) {
                for (auto& w : topic.waiters) complete(std::move(w), {});  // it will not be restored
                it = topics_.erase(it);
            } else {
                if (topic.phase == Phase::subscribed) --stats_.channels;
                topic.phase = Phase::restoring;  // subscribed: restore after the reconnect
                ++it;
            }
        }
        const bool was_up = state_ == PubSubState::up;
        state_ = PubSubState::down;
        if (was_up) {
            log(closed_ ? LogLevel::info : LogLevel::warn, std::string("redis: down (") + why + ")");
            notify_state(PubSubState::down);
        }
        if (reconnect && !closed_) {
            const auto delay = backoff_.next();
            reconnect_timer_.expires_after(delay);
            reconnect_timer_.async_wait([this, alive = std::weak_ptr<char>(alive_)](std::error_code ec) {
                if (!ec && alive.lock()) connect();
            });
        }
    }

    void drop_connections() {
        for (auto* conn : {&subscriber_, &publisher_}) {
            if (*conn) {
                (*conn)->set_disconnect_handler({});
                (*conn)->set_push_handler({});
                (*conn)->close();
                conn->reset();
            }
        }
    }

    // ---- batching -------------------------------------------------------------

    void schedule_flush() {
        if (flush_scheduled_) return;
        flush_scheduled_ = true;
        // Everything asked for during this tick goes out in one command per batch.
        asio::post(executor_, [this, alive = std::weak_ptr<char>(alive_)] {
            if (!alive.lock()) return;
            flush_scheduled_ = false;
            flush();
        });
    }

    void flush() {
        if (state_ != PubSubState::up || !subscriber_) return;
        send_batches(to_subscribe_, true);
        send_batches(to_unsubscribe_, false);
    }

    void send_batches(std::vector<std::string>& topics, bool subscribe) {
        for (std::size_t i = 0; i < topics.size(); i += config_.max_channels_per_command) {
            const auto end = std::min(topics.size(), i + config_.max_channels_per_command);
            std::vector<std::string> batch(topics.begin() + static_cast<std::ptrdiff_t>(i),
                                           topics.begin() + static_cast<std::ptrdiff_t>(end));
            if (subscribe) {
                ++stats_.subscribe_commands;
                subscriber_->subscribe(batch);
            } else {
                ++stats_.unsubscribe_commands;
                subscriber_->unsubscribe(batch);
            }
        }
        topics.clear();
    }

    // ---- what the subscriber connection receives ------------------------------

    void on_push(detail::RedisConnection::Reply reply) {
        if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
        const auto str = [&](std::size_t i) {
            const redisReply* e = reply->element[i];
            return e->type == REDIS_REPLY_STRING ? std::string(e->str, e->len) : std::string();
        };
        const std::string kind = str(0);
        std::string channel = str(1);
        if (kind == "message") {
            if (channel == config_.health_channel) {
                last_probe_seen_ = std::chrono::steady_clock::now();
                return;
            }
            const auto it = topics_.find(channel);
            if (it == topics_.end() || it->second.phase != Phase::subscribed) return;
            if (handlers_.on_message) handlers_.on_message(std::move(channel), str(2));
        } else if (kind == "subscribe") {
            const auto it = topics_.find(channel);
            if (it == topics_.end()) return;
            if (it->second.phase == Phase::restoring) {
                it->second.phase = Phase::subscribed;
                ++stats_.channels;
                restored_.push_back(channel);
                restore_done(channel);
            } else if (it->second.phase == Phase::subscribing) {
                it->second.phase = Phase::subscribed;
                ++stats_.channels;
                for (auto& w : it->second.waiters) complete(std::move(w), {});
                it->second.waiters.clear();
            }
        } else if (kind == "unsubscribe") {
            const auto it = topics_.find(channel);
            if (it == topics_.end() || it->second.phase != Phase::unsubscribing) return;
            for (auto& w : it->second.waiters) complete(std::move(w), {});
            topics_.erase(it);
        }
    }

    // One channel of the restore is settled (confirmed, or unsubscribed meanwhile);
    // when none is left, the hub hears which channels came back.
    void restore_done(const std::string& topic) {
        if (restore_pending_.erase(topic) == 0 || !restore_pending_.empty()) return;
        log(LogLevel::info, "redis: resubscribed " + std::to_string(restored_.size()) + " channels");
        std::vector<std::string> topics;
        topics.swap(restored_);
        asio::post(executor_, [this, topics = std::move(topics), alive = std::weak_ptr<char>(alive_)]() mutable {
            if (alive.lock() && handlers_.on_resubscribed) handlers_.on_resubscribed(std::move(topics));
        });
    }

    // ---- health check -----------------------------------------------------------

    void arm_health_check() {
        health_timer_.expires_after(config_.health_check_interval);
        health_timer_.async_wait([this, alive = std::weak_ptr<char>(alive_)](std::error_code ec) {
            if (ec || !alive.lock() || state_ != PubSubState::up) return;
            const auto silent = std::chrono::steady_clock::now() - last_probe_seen_;
            if (silent > config_.health_check_timeout + config_.health_check_interval) {
                ++stats_.health_failures;
                log(LogLevel::warn, "redis: health probe not seen for " +
                                        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(silent).count()) +
                                        " ms");
                return go_down("health check failed", true);
            }
            publisher_->command({"PUBLISH", config_.health_channel, "1"},
                                [](std::error_code, detail::RedisConnection::Reply) {});
            arm_health_check();
        });
    }

    asio::any_io_executor executor_;
    RedisPubSubConfig config_;
    LogSink log_;
    detail::RedisEndpoint endpoint_;
    std::string host_;  // as the URL names it; endpoint_.host holds the resolved address
    asio::ip::tcp::resolver resolver_{executor_};
    detail::Backoff backoff_;
    asio::steady_timer reconnect_timer_;
    asio::steady_timer health_timer_;
    PubSubHandlers handlers_;

    std::shared_ptr<detail::RedisConnection> subscriber_;
    std::shared_ptr<detail::RedisConnection> publisher_;
    int connected_count_ = 0;
    std::uint64_t generation_ = 0;
    bool ever_up_ = false;
    bool closed_ = false;
    PubSubState state_ = PubSubState::down;

    std::unordered_map<std::string, Topic> topics_;
    std::vector<std::string> to_subscribe_;
    std::vector<std::string> to_unsubscribe_;
    bool flush_scheduled_ = false;
    std::unordered_set<std::string> restore_pending_;  // channels of the restore not yet confirmed
    std::vector<std::string> restored_;                // confirmed so far, reported together
    std::chrono::steady_clock::time_point last_probe_seen_{};

    struct Counters {
        std::atomic<std::uint64_t> subscribe_commands{0}, unsubscribe_commands{0}, reconnects{0}, health_failures{0},
            channels{0};
    } stats_;
    std::shared_ptr<char> alive_ = std::make_shared<char>(0);  // weak_ptrs in handlers see destruction
};

}  // namespace wshub
