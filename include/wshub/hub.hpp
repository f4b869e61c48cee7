// wshub/hub.hpp: the Hub, the heart of one wshub instance.
//
// A Hub owns this instance's connections and subscriptions:
// `channel -> subscribers` and `connection -> channels`. It subscribes to the
// PubSub lazily (on a channel's first local subscriber) and unsubscribes after
// the last one leaves; it encodes every PubSub message once and hands the same
// buffer to every local subscriber; it applies the slow-client policy, the
// protocol's limits and the authorizer; and it drives the graceful shutdown.
//
// Template parameters change types only; numbers live in HubConfig:
//   Transport  accepts connections and sends frames (see transport_concept.hpp)
//   PubSub     carries messages between instances (see pubsub_concept.hpp)
//   Policies   a struct naming the policy types; derive from DefaultPolicies
//              and override what you need:
//                struct MyPolicies : wshub::DefaultPolicies {
//                    using slow_client = wshub::DropAndGap;
//                };
//              Its `registry` (default NoRegistry: one instance) says where
//              connections are known; with wshub::ConnectionRegistry, pass the
//              registry to the constructor and direct messages, presence and
//              crash cleanup work across instances (registry_concept.hpp).
//
// Threading: all hub state lives on one strand of the executor given to the
// constructor. Every entry point (transport and PubSub handlers, shutdown,
// publish) posts onto that strand, so the io_context may be run by one thread
// or by several; no mutex guards hub state. With several threads, construct
// the PubSub and the Hub with the same strand (asio::make_strand(io)), so the
// PubSub's own handlers never overlap the hub's calls into it. stats(), draining() and
// instance_id() may be called from any thread. The inspectors marked
// "strand only" may be called from the strand, or while no thread runs the
// io_context (tests).
//
// Lifetime: the Hub must outlive every handler it gave to the Transport and
// the PubSub, and the io_context's work for it: destroy it after shutdown()
// has completed and the io_context has stopped (or never ran).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/dispatch.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "wshub/authorizer.hpp"
#include "wshub/connection_info.hpp"
#include "wshub/detail/channel_name.hpp"
#include "wshub/detail/envelope.hpp"
#include "wshub/detail/registry_keys.hpp"
#include "wshub/detail/subscription_tracker.hpp"
#include "wshub/detail/token_bucket.hpp"
#include "wshub/detail/topics.hpp"
#include "wshub/error.hpp"
#include "wshub/frame.hpp"
#include "wshub/hub_config.hpp"
#include "wshub/hub_stats.hpp"
#include "wshub/json_protocol.hpp"
#include "wshub/logger.hpp"
#include "wshub/pubsub_concept.hpp"
#include "wshub/registry_concept.hpp"
#include "wshub/request.hpp"
#include "wshub/slow_client_policy.hpp"
#include "wshub/transport_concept.hpp"

namespace wshub {

// The policy types a Hub uses unless told otherwise.
struct DefaultPolicies {
    using protocol = JsonProtocol;          // wire format (docs/protocol.md)
    using slow_client = CloseSlowClients;   // evict with 4008 past the queue limits
    using authorizer = AllowAll;            // everyone may do everything
    using logger = NullLogger;              // silent
    using registry = NoRegistry;            // one instance: no cross-instance registry
};

// WebSocket close codes the hub uses (docs/protocol.md).
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;        // graceful shutdown
inline constexpr std::uint16_t policy_violation = 1008;  // too many bad frames in a row
inline constexpr std::uint16_t too_big = 1009;           // frame larger than max_message_bytes
inline constexpr std::uint16_t internal_error = 1011;
inline constexpr std::uint16_t slow_consumer = 4008;     // outgoing queue passed its limit
}  // namespace close_code

template <class Transport, class PubSub, class Policies = DefaultPolicies>
class Hub {
    static_assert(check_transport<Transport>(), "see the static_assert above for the missing Transport member");
    static_assert(check_pubsub<PubSub>(), "see the static_assert above for the missing PubSub member");
    static_assert(check_registry<typename Policies::registry>(),
                  "see the static_assert above for the missing Registry member");

public:
    using protocol = typename Policies::protocol;
    using slow_client_policy = typename Policies::slow_client;
    using authorizer_type = typename Policies::authorizer;
    using logger_type = typename Policies::logger;
    using registry_type = typename Policies::registry;
    using executor_type = asio::strand<asio::any_io_executor>;
    using clock = std::chrono::steady_clock;

    // A hub without a cross-instance registry (Policies::registry is NoRegistry).
    // Throws std::invalid_argument for an invalid instance id or prefix (setup misuse).
    Hub(asio::any_io_executor executor, Transport& transport, PubSub& pubsub, HubConfig config = {},
        authorizer_type authorizer = {}, logger_type logger = {})
        : Hub(std::move(executor), transport, pubsub, no_registry(), std::move(config), std::move(authorizer),
              std::move(logger)) {}

    // A hub with a registry, which must outlive it and be driven by the same
    // executor (strand). Throws std::invalid_argument like the other constructor.
    Hub(asio::any_io_executor executor, Transport& transport, PubSub& pubsub, registry_type& registry,
        HubConfig config = {}, authorizer_type authorizer = {}, logger_type logger = {})
        : strand_(asio::make_strand(std::move(executor))),
          transport_(transport),
          pubsub_(pubsub),
          registry_(registry),
          config_(std::move(config)),
          authorizer_(std::move(authorizer)),
          logger_(std::move(logger)),
          batch_timer_(strand_),
          deadline_timer_(strand_),
          drain_timer_(strand_),
          inbox_timer_(strand_) {
        if (config_.instance_id.empty()) config_.instance_id = random_instance_id();
        if (!detail::is_valid_instance_id(config_.instance_id)) {
            throw std::invalid_argument("wshub: HubConfig::instance_id must be 1..64 bytes of A-Z a-z 0-9 _ . -");
        }
        if (config_.max_queue_bytes == 0 || config_.max_queue_messages == 0) {
            throw std::invalid_argument("wshub: HubConfig::max_queue_bytes and max_queue_messages must be > 0");
        }
        counters_.pubsub_up.store(pubsub_.state() == PubSubState::up, std::memory_order_relaxed);
        transport_.set_handlers(TransportHandlers{
            [this](ConnectionId id, ConnectionInfo info) {
                asio::post(strand_, [this, id, info = std::move(info)]() mutable { on_open(id, std::move(info)); });
            },
            // Messages enter the strand at once when it is free (see enter()).
            [this](ConnectionId id, std::string payload, MessageKind kind) {
                enter([this, id, payload = std::move(payload), kind]() mutable {
                    on_message(id, std::move(payload), kind);
                });
            },
            [this](ConnectionId id) { asio::post(strand_, [this, id] { on_close(id); }); },
        });
        pubsub_.set_handlers(PubSubHandlers{
            // The same; fan-out never calls back into the PubSub, so running
            // inside its delivery is safe.
            [this](std::string topic, std::string payload) {
                enter([this, topic = std::move(topic), payload = std::move(payload)] {
                    on_pubsub_message(topic, payload);
                });
            },
            [this](PubSubState state) { asio::post(strand_, [this, state] { on_pubsub_state(state); }); },
            [this](std::vector<std::string> topics) {
                asio::post(strand_, [this, topics = std::move(topics)] { on_pubsub_resubscribed(topics); });
            },
        });
        inbox_topic_ = detail::registry_keys::inbox(config_.prefix, config_.instance_id);
        asio::post(strand_, [this] {
            registry_.start(config_.instance_id, config_.prefix);
            subscribe_inbox();
        });
    }

    Hub(const Hub&) = delete;
    Hub& operator=(const Hub&) = delete;

    // Graceful shutdown: stop accepting, mark draining, close every connection
    // with 1001 in spread-out batches, wait for the closes up to
    // config.shutdown_timeout, terminate the rest, let every channel
    // unsubscribe, then call `done` (on the strand). Safe to call more than
    // once and from any thread: every caller's `done` runs once it is over.
    void shutdown(std::function<void()> done = {}) {
        asio::post(strand_, [this, done = std::move(done)]() mutable { start_shutdown(std::move(done)); });
    }

    // Publishes raw JSON `data` to `channel` on every instance, as a client
    // publish would (without rate limit or authorizer). `data` must be valid
    // JSON: it is forwarded byte for byte. Thread-safe. done(ec) on the strand:
    // error::invalid_channel, error::unavailable (PubSub down) or success.
    void publish(std::string channel, std::string data, Completion done = {}) {
        asio::post(strand_, [this, channel = std::move(channel), data = std::move(data),
                             done = std::move(done)]() mutable {
            if (!detail::is_valid_channel_name(channel)) {
                if (done) done(make_error_code(error::invalid_channel));
                return;
            }
            if (!pubsub_up()) {
                if (done) done(make_error_code(error::unavailable));
                return;
            }
            publish_envelope(channel, data, [this, done = std::move(done)](std::error_code ec) mutable {
                if (done) asio::post(strand_, [done = std::move(done), ec] { done(ec); });
            });
        });
    }

    // Sends raw JSON `data` as a `direct` frame to one connection (public id),
    // on whatever instance it lives (through the registry), as a client `send`
    // would, with `from` as the frame's sender. Thread-safe. done(ec) on the
    // strand: error::not_found (unknown, closed, or its instance is dead),
    // error::unavailable (the registry cannot tell), or success.
    void send_to_connection(std::string to, std::string data, std::string from = "server", Completion done = {}) {
        asio::post(strand_, [this, to = std::move(to), data = std::move(data), from = std::move(from),
                             done = std::move(done)]() mutable {
            route_direct(to, data, from, [this, done = std::move(done)](std::error_code ec) mutable {
                if (done) asio::post(strand_, [done = std::move(done), ec] { done(ec); });
            });
        });
    }

    // Sends raw JSON `data` as a `direct` frame to every connection of `user`
    // (the user id the authentication hook gave), on every instance.
    // Thread-safe. done(ec) on the strand: error::not_found when the user has
    // no connection anywhere, error::unavailable, or success.
    void send_to_user(std::string user, std::string data, std::string from = "server", Completion done = {}) {
        asio::post(strand_, [this, user = std::move(user), data = std::move(data), from = std::move(from),
                             done = std::move(done)]() mutable {
            route_to_user(user, data, from, [this, done = std::move(done)](std::error_code ec) mutable {
                if (done) asio::post(strand_, [done = std::move(done), ec] { done(ec); });
            });
        });
    }

    HubStats stats() const noexcept { return counters_.snapshot(); }
    bool draining() const noexcept { return counters_.draining.load(std::memory_order_relaxed); }
    const std::string& instance_id() const noexcept { return config_.instance_id; }
    const HubConfig& config() const noexcept { return config_; }
    executor_type get_executor() const noexcept { return strand_; }

    // Strand only: local subscribers of a channel (0 when unknown).
    std::size_t subscriber_count(const std::string& channel) const {
        const auto it = channels_.find(channel);
        return it == channels_.end() ? 0 : it->second->members.size();
    }
    // Strand only: channels the hub tracks (with subscribers or a PubSub call in flight).
    std::size_t channel_count() const noexcept { return channels_.size(); }
    // Strand only: open connections.
    std::size_t connection_count() const noexcept { return connections_.size(); }
    // The public id ("<instance>-<n>") of a local connection. Any thread (pure).
    std::string public_id(ConnectionId id) const {
        return detail::public_connection_id(config_.instance_id, id_base_ + id);
    }

private:
    struct Channel;
    struct Connection;

    struct Membership {
        Channel* channel;
        std::size_t index;  // position of the connection in channel->members
    };

    struct Connection {
        Connection(ConnectionId id_, std::string public_id_, ConnectionInfo info_, const HubConfig& config)
            : id(id_),
              public_id(std::move(public_id_)),
              info(std::move(info_)),
              budget(config.publish_rate_per_second, config.publish_burst, clock::now()) {}
        ConnectionId id;
        std::string public_id;  // "<instance>-<id>": what clients and the registry know it by
        ConnectionInfo info;
        std::vector<Membership> memberships;
        std::size_t bad_frames_in_row = 0;
        detail::TokenBucket budget;
        std::vector<std::string> gap_channels;  // channels whose messages were dropped; owed a `gap`
        bool closing = false;                   // close requested; sends are skipped
    };

    struct PendingAck {
        ConnectionId connection;
        std::string raw_id;  // empty: no ack wanted, but a failure is still reported
        bool with_since;     // the subscribe asked for history: ack says recovered=false
    };

    struct Channel {
        std::string name;
        std::string topic;
        std::vector<Connection*> members;
        detail::SubscriptionTracker tracker;
        std::vector<PendingAck> pending;  // subscribers waiting for the PubSub subscription
        bool presence = false;            // join/leave events and presence queries are on for it
        // Messages that arrived this tick, fanned out together by flush_batches()
        // (or earlier, by flush_channel(), before anything else reaches the members).
        std::vector<SharedFrame> batch;
        bool dirty = false;  // listed in dirty_channels_; the channel is not erased until the flush
    };

    enum class Phase : std::uint8_t { running, closing_connections, finishing, stopped };

    // ---- logging -----------------------------------------------------------

    template <class MakeLine>
    void log(LogLevel level, MakeLine&& make_line) const {
        if (logger_.enabled(level)) logger_.log(level, make_line());
    }

    // The transport's ids restart at 1 in every process, and an instance
    // usually keeps its id across restarts: without a per-process base, a
    // restarted instance would hand an old connection id (still held by
    // others, in presence lists and `from` fields) to a new client, and a
    // direct message meant for the old one would reach a stranger. A random
    // multiple of 10^7 keeps ids short and the runs apart.
    static std::uint64_t random_id_base() {
        std::random_device rd;
        std::uniform_int_distribution<std::uint64_t> base(1, 999'999);
        return base(rd) * 10'000'000ULL;
    }

    // The local connection a public id names, if it is one of this instance's.
    std::optional<ConnectionId> local_connection_of(std::string_view public_id) const {
        const auto parsed = detail::parse_connection_id(public_id);
        if (!parsed || parsed->instance != config_.instance_id || parsed->number <= id_base_) return std::nullopt;
        return parsed->number - id_base_;
    }

    static std::string random_instance_id() {
        std::random_device rd;
        std::uniform_int_distribution<int> hex(0, 15);
        std::string id(12, '0');
        for (char& c : id) c = "0123456789abcdef"[hex(rd)];
        return id;
    }

    bool pubsub_up() const noexcept { return counters_.pubsub_up.load(std::memory_order_relaxed); }

    // ---- transport events (strand) ------------------------------------------

    void on_open(ConnectionId id, ConnectionInfo info) {
        if (phase_ != Phase::running) {
            // Accepted just before stop_accepting took effect: turn it away politely.
            transport_.close(id, close_code::going_away, "server shutting down");
            return;
        }
        auto [it, inserted] = connections_.try_emplace(id, nullptr);
        if (!inserted) {
            log(LogLevel::error, [&] { return "transport reused connection id " + std::to_string(id); });
            return;
        }
        it->second = std::make_unique<Connection>(id, public_id(id), std::move(info), config_);
        Connection& conn = *it->second;
        detail::HubCounters::add(counters_.connections);
        if (!conn.info.user_id.empty()) users_[conn.info.user_id].push_back(id);
        registry_.add_connection(conn.public_id, conn.info);
        send(conn, make_frame(protocol::welcome(conn.public_id, config_.instance_id)));
    }

    void on_close(ConnectionId id) {
        const auto it = connections_.find(id);
        if (it == connections_.end()) return;  // terminated earlier, or never opened
        forget_connection(it);
        if (phase_ == Phase::closing_connections) check_connections_closed();
    }

    void on_message(ConnectionId id, std::string payload, MessageKind kind) {
        const auto it = connections_.find(id);
        if (it == connections_.end()) return;
        Connection& conn = *it->second;
        if (conn.closing) return;
        detail::HubCounters::add(counters_.messages_in);
        if (payload.size() > config_.max_message_bytes) {
            // The transport should have refused it before buffering; refuse it here too.
            close_connection(conn, close_code::too_big, "message too big");
            return;
        }
        if (kind == MessageKind::binary) {
            bad_frame(conn, error::bad_request, "binary frames are not supported", {});
            return;
        }
        auto decoded = protocol::decode(payload, DecodeLimits{config_.max_nesting_depth});
        if (!decoded.ok()) {
            bad_frame(conn, decoded.error.code, decoded.error.message, decoded.error.id);
            return;
        }
        handle_request(conn, *decoded.request);
    }

    void handle_request(Connection& conn, const ClientRequest& request) {
        switch (request.type) {
            case RequestType::subscribe: return handle_subscribe(conn, request);
            case RequestType::unsubscribe: return handle_unsubscribe(conn, request);
            case RequestType::publish: return handle_publish(conn, request);
            case RequestType::send: return handle_send(conn, request);
            case RequestType::presence: return handle_presence(conn, request);
        }
    }

    // ---- requests (strand) --------------------------------------------------

    void handle_subscribe(Connection& conn, const ClientRequest& request) {
        if (!detail::is_valid_channel_name(request.channel)) {
            return bad_frame(conn, error::invalid_channel, "invalid channel name", request.id);
        }
        conn.bad_frames_in_row = 0;
        if (phase_ != Phase::running) {
            return reply_error(conn, request.id, error::unavailable, "server is shutting down");
        }
        if (!allowed(conn, request.id, [&] { return authorizer_.can_subscribe(conn.info, request.channel); })) return;
        const bool with_since = request.since.has_value();
        if (const auto* membership = find_membership(conn, request.channel)) {
            // Already subscribed: answer again, no second subscription.
            Channel& channel = *membership->channel;
            if (channel.tracker.active()) {
                reply_subscribed(conn, request.channel, request.id, with_since);
            } else {
                channel.pending.push_back(PendingAck{conn.id, std::string(request.id), with_since});
            }
            return;
        }
        if (conn.memberships.size() >= config_.max_subscriptions_per_connection) {
            return reply_error(conn, request.id, error::too_many_subscriptions,
                               "subscription limit of " + std::to_string(config_.max_subscriptions_per_connection) +
                                   " channels reached");
        }
        Channel& channel = channel_for(request.channel);
        add_member(conn, channel);
        if (channel.tracker.active()) {
            reply_subscribed(conn, request.channel, request.id, with_since);
        } else {
            channel.pending.push_back(PendingAck{conn.id, std::string(request.id), with_since});
        }
        if (channel.members.size() == 1) {
            issue(channel, channel.tracker.set_wanted(true));
        }
    }

    void handle_unsubscribe(Connection& conn, const ClientRequest& request) {
        if (!detail::is_valid_channel_name(request.channel)) {
            return bad_frame(conn, error::invalid_channel, "invalid channel name", request.id);
        }
        conn.bad_frames_in_row = 0;
        auto* membership = find_membership(conn, request.channel);
        if (membership == nullptr) {
            return reply_error(conn, request.id, error::not_subscribed, "not subscribed to this channel");
        }
        Channel& channel = *membership->channel;
        if (!channel.tracker.active()) {
            // Its subscribe is still waiting for the PubSub: answer it now, in
            // order, rather than never (the member is about to leave).
            auto& pending = channel.pending;
            for (auto it = pending.begin(); it != pending.end();) {
                if (it->connection != conn.id) {
                    ++it;
                    continue;
                }
                reply_subscribed(conn, channel.name, it->raw_id, it->with_since);
                it = pending.erase(it);
            }
        }
        remove_member(conn, channel);  // may destroy the channel
        reply_ack(conn, request.id);
    }

    void handle_publish(Connection& conn, const ClientRequest& request) {
        if (!detail::is_valid_channel_name(request.channel)) {
            return bad_frame(conn, error::invalid_channel, "invalid channel name", request.id);
        }
        if (!conn.budget.try_take(clock::now())) {
            return bad_frame(conn, error::rate_limited, "publishing too fast", request.id);
        }
        conn.bad_frames_in_row = 0;
        if (!allowed(conn, request.id, [&] { return authorizer_.can_publish(conn.info, request.channel); })) return;
        if (!pubsub_up()) {
            return reply_error(conn, request.id, error::unavailable, "message broker unreachable, not sent");
        }
        detail::HubCounters::add(counters_.publishes);
        publish_envelope(request.channel, request.data,
                         [this, id = conn.id, raw_id = std::string(request.id)](std::error_code ec) {
                             asio::post(strand_, [this, id, raw_id, ec] {
                                 const auto it = connections_.find(id);
                                 if (it == connections_.end()) return;
                                 if (ec) {
                                     reply_error(*it->second, raw_id, error::unavailable,
                                                 "message broker unreachable, not sent");
                                 } else {
                                     reply_ack(*it->second, raw_id);
                                 }
                             });
                         });
    }

    // `to` is a connection id, or "user:<user id>" for every connection of a user.
    void handle_send(Connection& conn, const ClientRequest& request) {
        if (!conn.budget.try_take(clock::now())) {
            return bad_frame(conn, error::rate_limited, "sending too fast", request.id);
        }
        conn.bad_frames_in_row = 0;
        if (!allowed(conn, request.id, [&] { return authorizer_.can_send(conn.info, request.to); })) return;
        auto reply = [this, id = conn.id, raw_id = std::string(request.id)](std::error_code ec) {
            asio::post(strand_, [this, id, raw_id, ec] {
                const auto it = connections_.find(id);
                if (it == connections_.end()) return;
                if (!ec) return reply_ack(*it->second, raw_id);
                if (ec == make_error_code(error::not_found)) {
                    return reply_error(*it->second, raw_id, error::not_found, "no such connection");
                }
                reply_error(*it->second, raw_id, error::unavailable, "connection registry unreachable, not sent");
            });
        };
        constexpr std::string_view user_prefix = "user:";
        const std::string_view to = request.to;
        if (to.compare(0, user_prefix.size(), user_prefix) == 0) {
            route_to_user(std::string(to.substr(user_prefix.size())), request.data, conn.public_id, std::move(reply));
        } else {
            route_direct(request.to, request.data, conn.public_id, std::move(reply));
        }
    }

    // A direct message to one connection: delivered here when it is local,
    // else one PUBLISH to the inbox of the instance that holds it.
    void route_direct(const std::string& to, std::string_view data, const std::string& from, Completion done) {
        const auto parsed = detail::parse_connection_id(to);
        if (parsed && parsed->instance == config_.instance_id) {
            // Ours, or an id of an earlier run of this instance: never routed elsewhere.
            const auto local = local_connection_of(to);
            const auto it = local ? connections_.find(*local) : connections_.end();
            if (it == connections_.end() || it->second->closing) return done(make_error_code(error::not_found));
            send(*it->second, make_frame(protocol::direct(from, data), FrameKind::direct));
            return done({});
        }
        if (!parsed || !registry_type::distributed) return done(make_error_code(error::not_found));
        detail::HubCounters::add(counters_.directs_routed);
        registry_.send_to_connection(to, detail::encode_direct(detail::DirectTarget::connection, from, to, data),
                                     std::move(done));
    }

    // A direct message to every connection of a user: this instance's
    // connections at once, the others through their instances' inboxes.
    void route_to_user(const std::string& user, std::string_view data, const std::string& from, Completion done) {
        const std::size_t local = deliver_to_user(user, make_frame(protocol::direct(from, data), FrameKind::direct));
        if (user.empty() || !registry_type::distributed) {
            return done(local > 0 ? std::error_code{} : make_error_code(error::not_found));
        }
        detail::HubCounters::add(counters_.directs_routed);
        registry_.send_to_user(user, detail::encode_direct(detail::DirectTarget::user, from, user, data),
                               [local, done = std::move(done)](std::error_code ec, std::size_t reached) {
                                   if (local + reached > 0) return done({});
                                   done(ec ? ec : make_error_code(error::not_found));
                               });
    }

    std::size_t deliver_to_user(const std::string& user, const SharedFrame& frame) {
        const auto it = users_.find(user);
        if (it == users_.end()) return 0;
        std::size_t delivered = 0;
        for (ConnectionId id : it->second) {
            const auto conn = connections_.find(id);
            if (conn == connections_.end() || conn->second->closing) continue;
            send(*conn->second, frame);
            ++delivered;
        }
        return delivered;
    }

    void handle_presence(Connection& conn, const ClientRequest& request) {
        if (!detail::is_valid_channel_name(request.channel)) {
            return bad_frame(conn, error::invalid_channel, "invalid channel name", request.id);
        }
        conn.bad_frames_in_row = 0;
        if (!config_.presence_enabled(request.channel)) {
            return reply_error(conn, request.id, error::not_found, "presence is not enabled for this channel");
        }
        // Who may subscribe to a channel may see who is in it.
        if (!allowed(conn, request.id, [&] { return authorizer_.can_subscribe(conn.info, request.channel); })) return;
        if (request.id.empty()) return;  // nobody would read the answer
        if constexpr (!registry_type::distributed) {
            std::vector<PresenceMember> members;
            if (const auto it = channels_.find(request.channel); it != channels_.end()) {
                for (const Connection* member : it->second->members) {
                    members.push_back(PresenceMember{member->public_id, member->info.user_id});
                }
            }
            send(conn, make_frame(protocol::presence_ack(request.id, members)));
        } else {
            registry_.presence_members(request.channel, [this, id = conn.id, raw_id = std::string(request.id)](
                                                            std::error_code ec, std::vector<PresenceMember> members) {
                asio::post(strand_, [this, id, raw_id, ec, members = std::move(members)] {
                    const auto it = connections_.find(id);
                    if (it == connections_.end()) return;
                    if (ec) return reply_error(*it->second, raw_id, error::unavailable, "connection registry unreachable");
                    send(*it->second, make_frame(protocol::presence_ack(raw_id, members)));
                });
            });
        }
    }

    // Asks the authorizer; a throwing authorizer is a bug of the application,
    // answered with `internal` instead of taking the instance down.
    template <class Ask>
    bool allowed(Connection& conn, std::string_view raw_id, Ask&& ask) {
        try {
            if (ask()) return true;
            reply_error(conn, raw_id, error::forbidden, "not allowed");
        } catch (const std::exception& e) {
            log(LogLevel::error, [&] { return std::string("authorizer threw: ") + e.what(); });
            reply_error(conn, raw_id, error::internal, "internal error");
        } catch (...) {
            log(LogLevel::error, [] { return std::string("authorizer threw"); });
            reply_error(conn, raw_id, error::internal, "internal error");
        }
        return false;
    }

    // ---- replies ------------------------------------------------------------

    void reply_ack(Connection& conn, std::string_view raw_id) {
        if (!raw_id.empty()) send(conn, make_frame(protocol::ack(raw_id)));
    }

    void reply_subscribed(Connection& conn, std::string_view channel, std::string_view raw_id, bool with_since) {
        if (raw_id.empty()) {
            // Without history nothing can be recovered; a client that asked
            // without an id still has to learn that it may have missed messages.
            if (with_since) {
                detail::HubCounters::add(counters_.gaps_sent);
                send(conn, make_frame(protocol::gap(channel)));
            }
            return;
        }
        send(conn, make_frame(with_since ? protocol::subscribe_ack(raw_id, false, std::nullopt, {})
                                         : protocol::ack(raw_id)));
    }

    void reply_error(Connection& conn, std::string_view raw_id, error code, std::string_view message) {
        send(conn, make_frame(protocol::error_frame(raw_id, code, message)));
    }

    // A frame the client should not have sent: answer it, and close with 1008
    // after max_bad_frames_in_row of them in a row.
    void bad_frame(Connection& conn, error code, std::string_view message, std::string_view raw_id) {
        detail::HubCounters::add(counters_.bad_frames);
        reply_error(conn, raw_id, code, message);
        if (++conn.bad_frames_in_row >= config_.max_bad_frames_in_row) {
            log(LogLevel::info, [&] {
                return "closing " + public_id(conn.id) + " with 1008 after " + std::to_string(conn.bad_frames_in_row) +
                       " bad frames in a row";
            });
            close_connection(conn, close_code::policy_violation, "too many bad frames");
        }
    }

    // ---- sending and the slow-client policy ---------------------------------

    // Hands a frame to the transport unless the slow-client policy says otherwise.
    // `channel` names the channel of a message frame (for a later `gap`).
    void send(Connection& conn, const SharedFrame& frame, const std::string* channel = nullptr) {
        if (conn.closing) return;
        if (!conn.gap_channels.empty()) flush_gaps_if_drained(conn);
        const QueueStats queued = transport_.queued(conn.id);
        const std::size_t size = frame->payload_bytes();
        const std::size_t messages = frame->messages();
        const bool over = queued.bytes + size > config_.max_queue_bytes ||
                          queued.messages + messages > config_.max_queue_messages;
        if (over) {
            const bool past_hard_cap = queued.bytes + size > 2 * config_.max_queue_bytes ||
                                       queued.messages + messages > 2 * config_.max_queue_messages;
            const SlowClientAction action =
                past_hard_cap ? SlowClientAction::evict : slow_client_policy::on_over_limit(frame->kind);
            switch (action) {
                case SlowClientAction::evict:
                    evict(conn, queued);
                    return;
                case SlowClientAction::drop:
                    drop(conn, channel, messages);
                    return;
                case SlowClientAction::send_anyway:
                    break;
            }
        }
        transport_.send(conn.id, frame);
        detail::HubCounters::add(counters_.messages_out, messages);
        detail::HubCounters::add(counters_.bytes_out, size);
    }

    void evict(Connection& conn, const QueueStats& queued) {
        detail::HubCounters::add(counters_.evictions);
        log(LogLevel::info, [&] {
            return "evicting slow client " + public_id(conn.id) + " with 4008: " + std::to_string(queued.bytes) +
                   " bytes in " + std::to_string(queued.messages) + " frames queued";
        });
        close_connection(conn, close_code::slow_consumer, "slow consumer");
    }

    void drop(Connection& conn, const std::string* channel, std::size_t messages) {
        detail::HubCounters::add(counters_.dropped_messages, messages);
        if (channel == nullptr) return;
        if (std::find(conn.gap_channels.begin(), conn.gap_channels.end(), *channel) != conn.gap_channels.end()) return;
        if (conn.gap_channels.empty()) {
            log(LogLevel::info, [&] { return "dropping messages for slow client " + public_id(conn.id); });
            owed_gaps_.push_back(conn.id);
            arm_drain_timer();
        }
        conn.gap_channels.push_back(*channel);
    }

    // Sends the owed `gap` frames once the client has taken at least half of its queue.
    bool flush_gaps_if_drained(Connection& conn) {
        const QueueStats queued = transport_.queued(conn.id);
        if (queued.bytes > config_.max_queue_bytes / 2 || queued.messages > config_.max_queue_messages / 2) {
            return false;
        }
        std::vector<std::string> channels;
        channels.swap(conn.gap_channels);
        for (const auto& name : channels) {
            if (find_membership(conn, name) == nullptr) continue;  // left the channel meanwhile
            detail::HubCounters::add(counters_.gaps_sent);
            send(conn, make_frame(protocol::gap(name)));
        }
        return true;
    }

    void arm_drain_timer() {
        if (drain_timer_armed_) return;
        drain_timer_armed_ = true;
        drain_timer_.expires_after(config_.drain_check_interval);
        drain_timer_.async_wait([this](std::error_code ec) {
            drain_timer_armed_ = false;
            if (ec) return;
            std::vector<ConnectionId> still_owed;
            for (ConnectionId id : owed_gaps_) {
                const auto it = connections_.find(id);
                if (it == connections_.end() || it->second->closing || it->second->gap_channels.empty()) continue;
                if (!flush_gaps_if_drained(*it->second)) still_owed.push_back(id);
            }
            owed_gaps_.swap(still_owed);
            if (!owed_gaps_.empty()) arm_drain_timer();
        });
    }

    void close_connection(Connection& conn, std::uint16_t code, std::string_view reason) {
        if (conn.closing) return;
        conn.closing = true;
        transport_.close(conn.id, code, reason);
    }

    // ---- membership (strand) ------------------------------------------------

    Membership* find_membership(Connection& conn, std::string_view channel) {
        for (auto& m : conn.memberships) {
            if (m.channel->name == channel) return &m;
        }
        return nullptr;
    }

    Channel& channel_for(const std::string& name) {
        auto& slot = channels_[name];
        if (!slot) {
            slot = std::make_unique<Channel>();
            slot->name = name;
            slot->topic = detail::channel_topic(config_.prefix, name);
            slot->presence = config_.presence_enabled(name);
            detail::HubCounters::add(counters_.channels);
        }
        return *slot;
    }

    void add_member(Connection& conn, Channel& channel) {
        flush_channel(channel);  // what arrived before the join is not for the newcomer
        conn.memberships.push_back(Membership{&channel, channel.members.size()});
        channel.members.push_back(&conn);
        detail::HubCounters::add(counters_.subscriptions);
        if (channel.presence) announce_presence(conn, channel, true);
    }

    // Presence: the registry records the member (for queries from any
    // instance) and every subscriber of the channel, on every instance, hears
    // join/leave through the channel's own PubSub topic. While the PubSub is
    // down the event is lost; the subscribers get `gap` after the reconnect
    // and should ask for the members again.
    void announce_presence(Connection& conn, Channel& channel, bool join) {
        if (join) {
            registry_.presence_add(channel.name, conn.public_id);
        } else {
            registry_.presence_remove(channel.name, conn.public_id);
        }
        if (!pubsub_up()) return;
        pubsub_.publish(channel.topic, detail::encode_presence_event(join, conn.public_id, conn.info.user_id), {});
    }

    // Removes conn from channel. May destroy the channel: do not use it afterwards.
    void remove_member(Connection& conn, Channel& channel) {
        const auto mine = std::find_if(conn.memberships.begin(), conn.memberships.end(),
                                       [&](const Membership& m) { return m.channel == &channel; });
        if (mine == conn.memberships.end()) return;
        flush_channel(channel);  // what arrived before the leave is still for the leaver
        const std::size_t index = mine->index;
        Connection* moved = channel.members.back();
        channel.members[index] = moved;
        channel.members.pop_back();
        if (moved != &conn) {
            for (auto& m : moved->memberships) {
                if (m.channel == &channel) m.index = index;
            }
        }
        *mine = conn.memberships.back();
        conn.memberships.pop_back();
        detail::HubCounters::sub(counters_.subscriptions);
        if (channel.presence) announce_presence(conn, channel, false);
        if (channel.members.empty()) {
            issue(channel, channel.tracker.set_wanted(false));
            erase_if_settled(channel);
        }
    }

    void forget_connection(typename std::unordered_map<ConnectionId, std::unique_ptr<Connection>>::iterator it) {
        Connection& conn = *it->second;
        while (!conn.memberships.empty()) {
            remove_member(conn, *conn.memberships.back().channel);
        }
        if (!conn.info.user_id.empty()) {
            const auto user = users_.find(conn.info.user_id);
            if (user != users_.end()) {
                auto& ids = user->second;
                ids.erase(std::remove(ids.begin(), ids.end(), conn.id), ids.end());
                if (ids.empty()) users_.erase(user);
            }
        }
        registry_.remove_connection(conn.public_id);
        connections_.erase(it);
        detail::HubCounters::sub(counters_.connections);
    }

    void erase_if_settled(Channel& channel) {
        if (channel.dirty) return;  // flush_batches() holds a pointer to it and calls this again
        if (!channel.members.empty() || !channel.pending.empty() || !channel.tracker.settled_idle()) return;
        channels_.erase(channel.name);  // destroys channel
        detail::HubCounters::sub(counters_.channels);
        if (phase_ == Phase::finishing) check_finished();
    }

    // ---- PubSub (strand) ----------------------------------------------------

    void issue(Channel& channel, detail::SubscriptionTracker::Command command) {
        using Command = detail::SubscriptionTracker::Command;
        if (command == Command::subscribe) {
            detail::HubCounters::add(counters_.pubsub_subscribes);
            log(LogLevel::info, [&] { return "lazy subscribe: first local subscriber of '" + channel.name + "'"; });
            pubsub_.subscribe(channel.topic, [this, name = channel.name](std::error_code ec) {
                asio::post(strand_, [this, name, ec] { on_subscribe_done(name, ec); });
            });
        } else if (command == Command::unsubscribe) {
            detail::HubCounters::add(counters_.pubsub_unsubscribes);
            log(LogLevel::info, [&] { return "lazy unsubscribe: last local subscriber left '" + channel.name + "'"; });
            pubsub_.unsubscribe(channel.topic, [this, name = channel.name](std::error_code ec) {
                asio::post(strand_, [this, name, ec] { on_unsubscribe_done(name, ec); });
            });
        }
    }

    void on_subscribe_done(const std::string& name, std::error_code ec) {
        const auto it = channels_.find(name);
        if (it == channels_.end()) return;  // cannot happen: an in-flight call keeps the channel
        Channel& channel = *it->second;
        const auto command = channel.tracker.on_subscribe_done(!ec);
        std::vector<PendingAck> pending;
        pending.swap(channel.pending);
        if (!ec) {
            for (const auto& p : pending) {
                Connection* conn = live_member(p.connection, channel);
                if (conn != nullptr) reply_subscribed(*conn, channel.name, p.raw_id, p.with_since);
            }
            issue(channel, command);  // unsubscribe at once if everyone left meanwhile
            erase_if_settled(channel);
            return;
        }
        log(LogLevel::warn, [&] { return "subscribe to '" + name + "' failed: " + ec.message(); });
        // Every member of a channel that is not yet active is still waiting for
        // this subscribe (members only join an inactive channel as pending), so
        // they all leave it and hear why.
        std::vector<Connection*> members = channel.members;
        for (const auto& p : pending) {
            Connection* conn = live_member(p.connection, channel);
            if (conn != nullptr) reply_error(*conn, p.raw_id, error::unavailable, "could not subscribe, try again");
        }
        for (std::size_t i = 0; i < members.size(); ++i) {
            const bool last = i + 1 == members.size();
            remove_member(*members[i], channel);  // the last removal may destroy the channel
            if (last) return;
        }
        erase_if_settled(channel);
    }

    void on_unsubscribe_done(const std::string& name, std::error_code ec) {
        const auto it = channels_.find(name);
        if (it == channels_.end()) return;
        if (ec) log(LogLevel::warn, [&] { return "unsubscribe from '" + name + "' unconfirmed: " + ec.message(); });
        Channel& channel = *it->second;
        issue(channel, channel.tracker.on_unsubscribe_done());  // subscribe again if someone joined meanwhile
        erase_if_settled(channel);
    }

    Connection* live_member(ConnectionId id, Channel& channel) {
        const auto it = connections_.find(id);
        if (it == connections_.end() || it->second->closing) return nullptr;
        for (const auto& m : it->second->memberships) {
            if (m.channel == &channel) return it->second.get();
        }
        return nullptr;
    }

    // Runs fn on the strand: at once when the strand is free (the hub handles
    // a message inside the transport's read handler or the PubSub's delivery
    // instead of one more pass of the io_context's queue later, see
    // docs/benchmarks.md, "where the latency goes"), posted when it is not. It
    // is posted, too, when this thread is already inside the strand: a
    // Transport or PubSub that calls a handler from inside a call the hub made
    // must not re-enter the hub in the middle of what it was doing. Ordering
    // holds: dispatch only runs inline when nothing is queued on the strand.
    template <class Fn>
    void enter(Fn&& fn) {
        if (strand_.running_in_this_thread()) {
            asio::post(strand_, std::forward<Fn>(fn));
        } else {
            asio::dispatch(strand_, std::forward<Fn>(fn));
        }
    }

    void publish_envelope(const std::string& channel, std::string_view data, Completion done) {
        pubsub_.publish(detail::channel_topic(config_.prefix, channel),
                        detail::encode_envelope(config_.instance_id, data), std::move(done));
    }

    // Fan-out: one encoding, one shared buffer, every local subscriber.
    void on_pubsub_message(const std::string& topic, const std::string& payload) {
        if (topic == inbox_topic_) return on_inbox(payload);
        const auto name = detail::channel_of_topic(config_.prefix, topic);
        if (!name) return;
        const auto it = channels_.find(std::string(*name));
        if (it == channels_.end() || !it->second->tracker.active()) return;  // late message after unsubscribe
        if (payload.compare(0, detail::presence_magic.size(), detail::presence_magic) == 0) {
            return on_presence_event(*it->second, payload);
        }
        const auto envelope = detail::decode_envelope(payload);
        if (!envelope) {
            log(LogLevel::warn, [&] { return "ignoring a malformed message on topic '" + topic + "'"; });
            return;
        }
        Channel& channel = *it->second;
        queue_for_fan_out(channel, make_frame(protocol::message(channel.name, envelope->data), FrameKind::message));
    }

    // Per-tick coalescing: a message is not fanned out at once but queued on
    // its channel, and one flush, posted behind whatever else the io_context
    // has ready, fans out everything that arrived meanwhile. Each subscriber
    // then costs one send (one write) per tick instead of one per message, so
    // the cost per message falls as the load rises. When the loop is idle the
    // flush runs right away: a lone message waits for nothing.
    void queue_for_fan_out(Channel& channel, SharedFrame frame) {
        channel.batch.push_back(std::move(frame));
        if (!channel.dirty) {
            channel.dirty = true;
            dirty_channels_.push_back(&channel);
        }
        post_flush();
    }

    void post_flush() {
        if (flush_posted_) return;
        flush_posted_ = true;
        asio::post(strand_, [this] { flush_batches(); });
    }

    void flush_batches() {
        flush_posted_ = false;
        std::vector<Channel*> dirty;
        dirty.swap(dirty_channels_);
        for (Channel* channel : dirty) {
            channel->dirty = false;
            flush_channel(*channel);
            erase_if_settled(*channel);  // its erasure waited for this flush; may destroy it
        }
        dirty.clear();
        if (dirty_channels_.empty()) dirty_channels_.swap(dirty);  // keep the capacity
    }

    // Fans out the channel's queued messages now. Called by the flush, and
    // before anything else is sent to the members or the members change, so
    // that every subscriber sees the channel's events in the PubSub's order
    // and gets exactly the messages that arrived while it was a member.
    void flush_channel(Channel& channel) {
        if (channel.batch.empty()) return;
        std::vector<SharedFrame> frames;
        frames.swap(channel.batch);
        // send() never changes membership (an eviction only marks the connection
        // closing), so iterating the members here is safe.
        if (frames.size() == 1) {
            for (Connection* conn : channel.members) send(*conn, frames.front(), &channel.name);
        } else if constexpr (transport_sends_batches_v<Transport>) {
            const SharedFrame batch = make_batch(std::move(frames));
            for (Connection* conn : channel.members) send(*conn, batch, &channel.name);
            detail::HubCounters::add(counters_.batches);
        } else {
            for (Connection* conn : channel.members) {
                for (const auto& frame : frames) send(*conn, frame, &channel.name);
            }
        }
        frames.clear();
        if (channel.batch.empty()) channel.batch.swap(frames);  // keep the capacity for the next tick
    }

    void on_presence_event(Channel& channel, const std::string& payload) {
        const auto event = detail::decode_presence_event(payload);
        if (!event) {
            log(LogLevel::warn, [&] { return "ignoring a malformed presence event on '" + channel.name + "'"; });
            return;
        }
        flush_channel(channel);  // messages published before the event go first
        const SharedFrame frame =
            make_frame(event->join ? protocol::join(channel.name, event->connection, event->user)
                                   : protocol::leave(channel.name, event->connection, event->user));
        for (Connection* conn : channel.members) send(*conn, frame);
    }

    // A direct message another instance routed here through the registry.
    void on_inbox(const std::string& payload) {
        const auto envelope = detail::decode_direct(payload);
        if (!envelope) {
            log(LogLevel::warn, [] { return std::string("ignoring a malformed message in this instance's inbox"); });
            return;
        }
        detail::HubCounters::add(counters_.directs_received);
        const SharedFrame frame = make_frame(protocol::direct(envelope->from, envelope->data), FrameKind::direct);
        if (envelope->kind == detail::DirectTarget::user) {
            deliver_to_user(std::string(envelope->target), frame);
            return;
        }
        const auto local = local_connection_of(envelope->target);
        if (!local) return;  // an earlier run's connection: gone
        const auto it = connections_.find(*local);
        if (it != connections_.end()) send(*it->second, frame);  // closed meanwhile: nobody left to tell
    }

    // The inbox (<prefix>inbox:<instance>) is how direct messages reach this
    // instance; with a distributed registry it stays subscribed for the hub's
    // whole life. A failed subscribe is retried when the PubSub is up again,
    // or after inbox_retry_interval.
    void subscribe_inbox() {
        if (!registry_type::distributed || inbox_ != InboxState::none || phase_ != Phase::running) return;
        inbox_ = InboxState::subscribing;
        pubsub_.subscribe(inbox_topic_, [this](std::error_code ec) {
            asio::post(strand_, [this, ec] {
                if (!ec) {
                    inbox_ = InboxState::subscribed;
                    if (phase_ != Phase::running) unsubscribe_inbox();
                    return;
                }
                inbox_ = InboxState::none;
                inbox_timer_.expires_after(inbox_retry_interval);
                inbox_timer_.async_wait([this](std::error_code timer) {
                    if (!timer) subscribe_inbox();
                });
            });
        });
    }

    void unsubscribe_inbox() {
        inbox_timer_.cancel();
        if (inbox_ != InboxState::subscribed) return;
        inbox_ = InboxState::none;
        pubsub_.unsubscribe(inbox_topic_, {});
    }

    void on_pubsub_state(PubSubState state) {
        const bool up = state == PubSubState::up;
        if (up == pubsub_up()) return;
        counters_.pubsub_up.store(up, std::memory_order_relaxed);
        if (up) subscribe_inbox();
        log(up ? LogLevel::info : LogLevel::warn,
            [&] { return up ? std::string("pubsub is up") : std::string("pubsub is down; publishes fail fast"); });
    }

    // Messages on these topics may have been lost while the PubSub was down:
    // tell every local subscriber, once per channel.
    void on_pubsub_resubscribed(const std::vector<std::string>& topics) {
        for (const auto& topic : topics) {
            const auto name = detail::channel_of_topic(config_.prefix, topic);
            if (!name) continue;
            const auto it = channels_.find(std::string(*name));
            if (it == channels_.end() || !it->second->tracker.active()) continue;
            Channel& channel = *it->second;
            flush_channel(channel);
            const SharedFrame frame = make_frame(protocol::gap(channel.name));
            for (Connection* conn : channel.members) {
                detail::HubCounters::add(counters_.gaps_sent);
                send(*conn, frame);
            }
        }
    }

    // ---- graceful shutdown (strand) -----------------------------------------

    void start_shutdown(std::function<void()> done) {
        if (done) shutdown_waiters_.push_back(std::move(done));
        if (phase_ == Phase::stopped) return notify_shutdown_waiters();
        if (phase_ != Phase::running) return;  // already under way; `done` runs at its end
        phase_ = Phase::closing_connections;
        counters_.draining.store(true, std::memory_order_relaxed);
        shutdown_started_ = clock::now();
        log(LogLevel::info, [] { return std::string("shutdown: stopped accepting, draining"); });
        transport_.stop_accepting();
        close_queue_.reserve(connections_.size());
        for (const auto& entry : connections_) close_queue_.push_back(entry.first);
        log(LogLevel::info, [&] {
            return "shutdown: closing " + std::to_string(close_queue_.size()) + " connections with 1001 in batches of " +
                   std::to_string(config_.shutdown_batch_size);
        });
        deadline_timer_.expires_after(config_.shutdown_timeout);
        deadline_timer_.async_wait([this](std::error_code ec) {
            if (!ec) on_shutdown_deadline();
        });
        close_next_batch();
    }

    void close_next_batch() {
        const std::size_t batch = std::max<std::size_t>(1, config_.shutdown_batch_size);
        std::size_t closed = 0;
        while (!close_queue_.empty() && closed < batch) {
            const ConnectionId id = close_queue_.back();
            close_queue_.pop_back();
            const auto it = connections_.find(id);
            if (it == connections_.end() || it->second->closing) continue;
            close_connection(*it->second, close_code::going_away, "server shutting down");
            ++closed;
        }
        if (!close_queue_.empty()) {
            batch_timer_.expires_after(config_.shutdown_batch_interval);
            batch_timer_.async_wait([this](std::error_code ec) {
                if (!ec && phase_ == Phase::closing_connections) close_next_batch();
            });
            return;
        }
        log(LogLevel::info, [] { return std::string("shutdown: every connection was asked to close"); });
        check_connections_closed();
    }

    void check_connections_closed() {
        if (phase_ != Phase::closing_connections || !close_queue_.empty() || !connections_.empty()) return;
        log(LogLevel::info, [] { return std::string("shutdown: every connection closed"); });
        begin_finishing();
    }

    void on_shutdown_deadline() {
        if (phase_ == Phase::closing_connections) {
            log(LogLevel::warn, [&] {
                return "shutdown: deadline passed, terminating " + std::to_string(connections_.size()) +
                       " connections";
            });
            close_queue_.clear();
            batch_timer_.cancel();
            while (!connections_.empty()) {
                const auto it = connections_.begin();
                transport_.terminate(it->first);
                forget_connection(it);
            }
            begin_finishing();
        } else if (phase_ == Phase::finishing) {
            log(LogLevel::warn, [&] {
                return "shutdown: " + std::to_string(channels_.size()) + " unsubscribes unconfirmed at the deadline";
            });
            finish_shutdown();
        }
    }

    void begin_finishing() {
        phase_ = Phase::finishing;
        log(LogLevel::info, [&] {
            return "shutdown: waiting for " + std::to_string(channels_.size()) + " channels to unsubscribe";
        });
        // Every connection is gone, so the registry holds nothing of ours but
        // the heartbeat and the indexes: remove them (the inbox goes first, so
        // nothing is routed here any more).
        unsubscribe_inbox();
        registry_.close([this](std::error_code ec) {
            asio::post(strand_, [this, ec] {
                if (ec) {
                    log(LogLevel::warn, [&] {
                        return "shutdown: registry entries not removed (" + ec.message() + "); they expire by TTL";
                    });
                } else {
                    log(LogLevel::info, [] { return std::string("shutdown: registry entries removed"); });
                }
                registry_closed_ = true;
                check_finished();
            });
        });
        if (deadline_timer_.expiry() <= clock::now()) {
            // The connection deadline is spent; give the unsubscribes one more period.
            deadline_timer_.expires_after(config_.shutdown_timeout);
            deadline_timer_.async_wait([this](std::error_code ec) {
                if (!ec) on_shutdown_deadline();
            });
        }
        check_finished();
    }

    void check_finished() {
        if (phase_ == Phase::finishing && channels_.empty() && registry_closed_) finish_shutdown();
    }

    void finish_shutdown() {
        phase_ = Phase::stopped;
        deadline_timer_.cancel();
        batch_timer_.cancel();
        drain_timer_.cancel();
        inbox_timer_.cancel();
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - shutdown_started_);
        log(LogLevel::info, [&] { return "shutdown: complete in " + std::to_string(took.count()) + " ms"; });
        notify_shutdown_waiters();
    }

    void notify_shutdown_waiters() {
        std::vector<std::function<void()>> waiters;
        waiters.swap(shutdown_waiters_);
        for (auto& done : waiters) asio::post(strand_, std::move(done));
    }

    static registry_type& no_registry() {
        static_assert(std::is_same_v<registry_type, NoRegistry>,
                      "wshub: this Hub's Policies::registry is a real registry: pass it to the constructor, "
                      "Hub(executor, transport, pubsub, registry, config, ...)");
        static NoRegistry none;  // stateless: one serves every hub
        return none;
    }

    enum class InboxState : std::uint8_t { none, subscribing, subscribed };
    static constexpr std::chrono::seconds inbox_retry_interval{1};

    executor_type strand_;
    Transport& transport_;
    PubSub& pubsub_;
    registry_type& registry_;
    HubConfig config_;
    const std::uint64_t id_base_ = random_id_base();
    authorizer_type authorizer_;
    logger_type logger_;
    detail::HubCounters counters_;

    std::unordered_map<ConnectionId, std::unique_ptr<Connection>> connections_;
    std::unordered_map<std::string, std::unique_ptr<Channel>> channels_;
    std::unordered_map<std::string, std::vector<ConnectionId>> users_;  // user id -> its local connections

    std::string inbox_topic_;
    InboxState inbox_ = InboxState::none;
    bool registry_closed_ = false;

    std::vector<Channel*> dirty_channels_;  // channels with a batch queued; see queue_for_fan_out
    bool flush_posted_ = false;

    std::vector<ConnectionId> owed_gaps_;  // connections with dropped messages, checked by drain_timer_
    bool drain_timer_armed_ = false;

    Phase phase_ = Phase::running;
    std::vector<ConnectionId> close_queue_;
    std::vector<std::function<void()>> shutdown_waiters_;
    clock::time_point shutdown_started_{};
    asio::steady_timer batch_timer_;
    asio::steady_timer deadline_timer_;
    asio::steady_timer drain_timer_;
    asio::steady_timer inbox_timer_;
};

}  // namespace wshub
