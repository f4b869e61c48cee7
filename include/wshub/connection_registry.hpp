// wshub/connection_registry.hpp: where every connection of the deployment lives, in Redis.
//
// Plug it into a Hub to get, across all instances: direct messages to one
// connection or to every connection of a user (one PUBLISH to the inbox of
// exactly the instance that holds the target, never a broadcast), presence
// lists per channel, hub-wide connection counts, and cleanup after a crash.
//
//   wshub::ConnectionRegistry registry(strand, {/* url, ttl, ... */});
//   struct Policies : wshub::DefaultPolicies { using registry = wshub::ConnectionRegistry; };
//   wshub::Hub<Transport, wshub::RedisPubSub, Policies> hub(strand, transport, pubsub, registry, config);
//
// What it writes (key layout in detail/registry_keys.hpp and docs/operations.md):
// per connection a key with a TTL, per instance a heartbeat key with a TTL and
// an index of its connections and presence entries, per user and per presence
// channel a sorted set whose scores are expiry times (so entries nobody
// refreshes stop counting, and are swept, even if no janitor ever sees them). Every key has a TTL that the live instances refresh every
// heartbeat_interval, in pipelined batches, by writing the entries again: a
// connection that lives for hours stays registered, and a Redis that restarted
// empty is refilled by the next heartbeat (at once after a reconnect).
//
// A janitor runs on every instance every janitor_interval; a lock in Redis
// (SET NX PX) lets one of them work at a time. It finds instances whose
// heartbeat expired and removes their connections, user entries and presence
// entries in one Lua script that checks, atomically, that the heartbeat is
// still gone (detail/registry_scripts.hpp); it publishes `leave` for each
// presence entry it removed. A crash therefore costs at most ttl +
// janitor_interval of stale entries; lookups, user sends and presence queries
// ignore a dead instance's entries even before the janitor comes. An instance
// that comes back after the janitor removed it writes its entries again and
// announces `join` for its presence members. On its first connection an
// instance removes what an earlier run with the same id left behind.
//
// While Redis is unreachable: lookups, sends and presence queries fail at once
// with error::unavailable; registrations are kept locally and written when the
// connection is back. Clocks: presence expiry scores are wall-clock
// milliseconds, so instances' clocks should agree to well under the TTL (NTP).
//
// Thread safety: not thread-safe. Every member must be called from the
// executor given to the constructor (the hub's strand); handlers run on it.
// stats() and cluster_stats() may be called from any thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "wshub/connection_info.hpp"
#include "wshub/detail/envelope.hpp"
#include "wshub/detail/redis_client.hpp"
#include "wshub/detail/registry_keys.hpp"
#include "wshub/detail/registry_scripts.hpp"
#include "wshub/detail/topics.hpp"
#include "wshub/error.hpp"
#include "wshub/logger.hpp"
#include "wshub/registry_concept.hpp"

namespace wshub {

struct ConnectionRegistryConfig {
    // Where Redis is, as RedisPubSubConfig::url. Default: "redis://127.0.0.1:6379".
    std::string url = "redis://127.0.0.1:6379";
    // Connection attempt (TCP, AUTH, SELECT) limit. Default: 2 s.
    std::chrono::milliseconds connect_timeout{2000};
    // How long a command may wait for its reply before the link counts as dead. Default: 2 s.
    std::chrono::milliseconds command_timeout{2000};
    // Reconnect delays: capped exponential with full jitter. Defaults: 100 ms, 1 s.
    std::chrono::milliseconds reconnect_initial_delay{100};
    std::chrono::milliseconds reconnect_max_delay{1000};
    // How often this instance writes its heartbeat and refreshes every entry's TTL. Default: 10 s.
    std::chrono::milliseconds heartbeat_interval{10'000};
    // TTL of every key this instance writes; an instance silent for this long
    // counts as dead. At least 2 x heartbeat_interval. Default: 30 s.
    std::chrono::milliseconds ttl{30'000};
    // How often each instance tries to take the janitor lock and clean up
    // after dead instances (with +-10% jitter). Default: 10 s.
    std::chrono::milliseconds janitor_interval{10'000};
    // Entries per pipelined command when refreshing (HSET fields, ZADD members, SADD members). Default: 256.
    std::size_t refresh_batch = 256;
    // Shown in the heartbeat ("host:port" where clients reach this instance); informational. Default: empty.
    std::string address;
};

// Counters for metrics and tests (a snapshot).
struct ConnectionRegistryStats {
    std::uint64_t heartbeats = 0;          // heartbeat rounds written
    std::uint64_t reregistrations = 0;     // times every entry was written again after a (re)connect
    std::uint64_t janitor_runs = 0;        // janitor rounds that held the lock
    std::uint64_t instances_cleaned = 0;   // dead instances removed by this instance's janitor
    std::uint64_t entries_cleaned = 0;     // connections + presence entries of dead instances removed
    std::uint64_t direct_sent = 0;         // inbox publishes that reached an instance
    bool up = false;                       // the registry's Redis link is up
};

// The deployment as the heartbeats show it, refreshed every heartbeat_interval.
struct ClusterStats {
    bool known = false;                                              // at least one round read
    std::uint64_t connections = 0;                                   // over every live instance
    std::vector<std::pair<std::string, std::uint64_t>> instances;    // live instance -> its connections, sorted
};

class ConnectionRegistry {
public:
    static constexpr bool distributed = true;
    using LogSink = std::function<void(LogLevel, std::string_view)>;

    // Throws std::invalid_argument for a bad URL or ttl < 2 x heartbeat_interval (setup misuse).
    ConnectionRegistry(asio::any_io_executor executor, ConnectionRegistryConfig config = {}, LogSink log = {})
        : executor_(std::move(executor)),
          config_(std::move(config)),
          log_(std::move(log)),
          client_(executor_, client_options(config_), "registry", log_),
          heartbeat_timer_(executor_),
          janitor_timer_(executor_) {
        if (config_.ttl < 2 * config_.heartbeat_interval) {
            throw std::invalid_argument("wshub: ConnectionRegistryConfig::ttl must be at least 2 x heartbeat_interval");
        }
        if (config_.refresh_batch == 0) config_.refresh_batch = 1;
    }

    ConnectionRegistry(const ConnectionRegistry&) = delete;
    ConnectionRegistry& operator=(const ConnectionRegistry&) = delete;

    ~ConnectionRegistry() {
        alive_.reset();
        heartbeat_timer_.cancel();
        janitor_timer_.cancel();
    }

    // ---- the Registry concept -------------------------------------------------

    void start(const std::string& instance_id, const std::string& prefix) {
        if (started_) return;
        started_ = true;
        instance_ = instance_id;
        prefix_ = prefix;
        started_ms_ = now_ms();
        client_.set_handlers([this] { on_up(); }, [this] { on_down(); });
        client_.start();
        arm_heartbeat();
        arm_janitor();
    }

    void add_connection(const std::string& connection, const ConnectionInfo& info) {
        auto& local = conns_[connection];
        local.user = info.user_id;
        local.since_ms = now_ms();
        if (!writable()) return;  // written by the re-registration when Redis is back
        const auto ttl = ttl_ms();
        cmd({"SET", detail::registry_keys::conn(prefix_, connection), detail::registry_keys::encode_conn(instance_, local.since_ms, local.user), "PX", ttl});
        cmd({"HSET", detail::registry_keys::instance_conns(prefix_, instance_), connection, local.user});
        cmd({"PEXPIRE", detail::registry_keys::instance_conns(prefix_, instance_), index_ttl_ms()});
        if (!local.user.empty()) {
            const auto key = detail::registry_keys::user(prefix_, local.user);
            cmd({"ZADD", key, expiry_ms(), connection});
            cmd({"PEXPIRE", key, ttl});
        }
    }

    void remove_connection(const std::string& connection) {
        const auto it = conns_.find(connection);
        if (it == conns_.end()) return;
        for (const auto& channel : std::vector<std::string>(it->second.presence)) presence_remove(channel, connection);
        if (writable()) {
            cmd({"DEL", detail::registry_keys::conn(prefix_, connection)});
            cmd({"HDEL", detail::registry_keys::instance_conns(prefix_, instance_), connection});
            if (!it->second.user.empty()) cmd({"ZREM", detail::registry_keys::user(prefix_, it->second.user), connection});
        } else if (removed_while_down_.size() < max_removed_while_down) {
            // Deleted when Redis is back; past the cap they are left to their
            // TTL (the user entry's score expires with it).
            removed_while_down_.emplace_back(it->first, it->second.user);
        }
        conns_.erase(it);
    }

    void lookup(const std::string& connection, LookupHandler done) {
        const auto instance = detail::registry_keys::instance_of(connection);
        if (!instance) return post(std::move(done), make_error_code(error::not_found), ConnectionRecord{});
        client_.command({"MGET", detail::registry_keys::conn(prefix_, connection), detail::registry_keys::instance(prefix_, *instance)},
                        [connection, done = std::move(done)](std::error_code ec, Reply reply) {
                            ConnectionRecord record;
                            ec = ec ? make_error_code(error::unavailable) : read_record(reply, connection, record);
                            done(ec, std::move(record));
                        });
    }

    void send_to_connection(const std::string& connection, std::string payload, Completion done) {
        lookup(connection, [this, payload = std::move(payload), done = std::move(done)](
                               std::error_code ec, ConnectionRecord record) mutable {
            if (ec) return done(ec);
            publish_inbox(record.instance, std::move(payload), [done = std::move(done)](std::error_code e, bool heard) {
                done(e ? e : heard ? std::error_code{} : make_error_code(error::not_found));
            });
        });
    }

    void send_to_user(const std::string& user, std::string payload, DeliveryHandler done) {
        // Members whose score (expiry) passed belong to dead instances.
        client_.command({"ZRANGEBYSCORE", detail::registry_keys::user(prefix_, user), std::to_string(now_ms()), "+inf"},
                        [this, payload = std::move(payload),
                                                                 done = std::move(done)](std::error_code ec,
                                                                                         Reply reply) mutable {
            if (ec || reply == nullptr || reply->type != REDIS_REPLY_ARRAY) {
                return done(make_error_code(error::unavailable), 0);
            }
            std::vector<std::string> instances;
            for (std::size_t i = 0; i < reply->elements; ++i) {
                const auto instance = detail::registry_keys::instance_of(string_of(reply->element[i]));
                if (!instance || *instance == instance_) continue;  // the hub delivers locally itself
                if (std::find(instances.begin(), instances.end(), *instance) == instances.end()) {
                    instances.emplace_back(*instance);
                }
            }
            publish_to_live(std::move(instances), std::move(payload), std::move(done));
        });
    }

    void presence_add(const std::string& channel, const std::string& connection) {
        const auto it = conns_.find(connection);
        if (it == conns_.end()) return;
        auto& presence = it->second.presence;
        if (std::find(presence.begin(), presence.end(), channel) != presence.end()) return;
        presence.push_back(channel);
        if (!writable()) return;
        const auto member = detail::registry_keys::presence_member(connection, it->second.user);
        cmd({"ZADD", detail::registry_keys::presence(prefix_, channel), expiry_ms(), member});
        cmd({"PEXPIRE", detail::registry_keys::presence(prefix_, channel), index_ttl_ms()});
        cmd({"SADD", detail::registry_keys::instance_presence(prefix_, instance_), detail::registry_keys::presence_entry(channel, member)});
        cmd({"PEXPIRE", detail::registry_keys::instance_presence(prefix_, instance_), index_ttl_ms()});
    }

    void presence_remove(const std::string& channel, const std::string& connection) {
        const auto it = conns_.find(connection);
        if (it == conns_.end()) return;
        auto& presence = it->second.presence;
        const auto found = std::find(presence.begin(), presence.end(), channel);
        if (found == presence.end()) return;
        presence.erase(found);
        const auto member = detail::registry_keys::presence_member(connection, it->second.user);
        if (!writable()) {
            // Removed when Redis is back (the hub announced the leave already,
            // or, with the PubSub down too, its subscribers get `gap`); past the
            // cap, the member's score expires and a heartbeat's sweep removes it.
            if (presence_removed_while_down_.size() < max_removed_while_down) {
                presence_removed_while_down_.emplace_back(channel, member);
            }
            return;
        }
        cmd({"ZREM", detail::registry_keys::presence(prefix_, channel), member});
        cmd({"SREM", detail::registry_keys::instance_presence(prefix_, instance_), detail::registry_keys::presence_entry(channel, member)});
    }

    // Members whose score (expiry) passed are skipped; so are those of an
    // instance whose heartbeat is gone (a member added between two heartbeats
    // has a score that outlives its instance's heartbeat by up to an interval).
    void presence_members(const std::string& channel, MembersHandler done) {
        client_.command(
            {"ZRANGEBYSCORE", detail::registry_keys::presence(prefix_, channel), std::to_string(now_ms()), "+inf"},
            [this, alive = std::weak_ptr<char>(alive_), done = std::move(done)](std::error_code ec,
                                                                               Reply reply) mutable {
                if (!alive.lock()) return;
                if (ec || reply == nullptr || reply->type != REDIS_REPLY_ARRAY) {
                    return done(make_error_code(error::unavailable), {});
                }
                std::vector<PresenceMember> members;
                std::vector<std::string> instances;  // of the members, each once
                members.reserve(reply->elements);
                for (std::size_t i = 0; i < reply->elements; ++i) {
                    const auto split = detail::registry_keys::split_presence_member(string_of(reply->element[i]));
                    const auto instance = split ? detail::registry_keys::instance_of(split->connection) : std::nullopt;
                    if (!instance) continue;
                    members.push_back({std::string(split->connection), std::string(split->user)});
                    if (std::find(instances.begin(), instances.end(), *instance) == instances.end()) {
                        instances.emplace_back(*instance);
                    }
                }
                read_heartbeats(std::move(instances), [members = std::move(members), done = std::move(done)](
                                                           std::error_code e, std::vector<std::string> ids,
                                                           std::vector<std::optional<std::string>> beats) mutable {
                    if (e) return done(e, {});
                    std::vector<std::string> dead;
                    for (std::size_t i = 0; i < ids.size(); ++i) {
                        if (!beats[i]) dead.push_back(ids[i]);
                    }
                    if (!dead.empty()) {
                        members.erase(std::remove_if(members.begin(), members.end(),
                                                     [&](const PresenceMember& m) {
                                                         const auto owner = detail::registry_keys::instance_of(m.connection);
                                                         return std::find(dead.begin(), dead.end(), *owner) != dead.end();
                                                     }),
                                      members.end());
                    }
                    done({}, std::move(members));
                });
            });
    }

    // Removes every entry of this instance (connections still registered,
    // presence, the indexes, the heartbeat), then disconnects; done(ec) once
    // Redis confirmed, or with error::unavailable when it could not be reached
    // (the entries then expire within ttl).
    void close(Completion done) {
        closing_ = true;
        heartbeat_timer_.cancel();
        janitor_timer_.cancel();
        if (!started_ || !writable()) {
            client_.close();
            return post(std::move(done), make_error_code(error::unavailable));
        }
        for (const auto& entry : std::vector<std::string>(local_ids())) remove_connection(entry);
        client_.command({"DEL", detail::registry_keys::instance(prefix_, instance_), detail::registry_keys::instance_conns(prefix_, instance_),
                         detail::registry_keys::instance_presence(prefix_, instance_)},
                        [](std::error_code, Reply) {});
        client_.command({"SREM", detail::registry_keys::instances(prefix_), instance_},
                        [this, alive = std::weak_ptr<char>(alive_), done = std::move(done)](std::error_code ec, Reply) {
                            if (!alive.lock()) return;  // destroyed first: nobody is waiting
                            client_.close();
                            log(LogLevel::info, "registry: removed this instance's entries");
                            if (done) done(ec ? make_error_code(error::unavailable) : std::error_code{});
                        });
    }

    // ---- beyond the concept -----------------------------------------------------

    // Any thread.
    ConnectionRegistryStats stats() const {
        ConnectionRegistryStats s;
        s.heartbeats = stats_.heartbeats.load(std::memory_order_relaxed);
        s.reregistrations = stats_.reregistrations.load(std::memory_order_relaxed);
        s.janitor_runs = stats_.janitor_runs.load(std::memory_order_relaxed);
        s.instances_cleaned = stats_.instances_cleaned.load(std::memory_order_relaxed);
        s.entries_cleaned = stats_.entries_cleaned.load(std::memory_order_relaxed);
        s.direct_sent = stats_.direct_sent.load(std::memory_order_relaxed);
        s.up = stats_.up.load(std::memory_order_relaxed);
        return s;
    }

    // Any thread: the deployment as of the last heartbeat round.
    ClusterStats cluster_stats() const {
        std::lock_guard<std::mutex> lock(cluster_mutex_);
        return cluster_;
    }

    // Strand: runs the janitor now (tests, or an operator's command) instead of waiting for its timer.
    void run_janitor_now() { janitor(); }

private:
    using Reply = detail::RedisClient::Reply;
    struct Local {
        std::string user;
        std::int64_t since_ms = 0;
        std::vector<std::string> presence;  // presence channels this connection is in
    };

    static detail::RedisClientOptions client_options(const ConnectionRegistryConfig& c) {
        detail::RedisClientOptions o;
        o.url = c.url;
        o.connect_timeout = c.connect_timeout;
        o.command_timeout = c.command_timeout;
        o.reconnect_initial_delay = c.reconnect_initial_delay;
        o.reconnect_max_delay = c.reconnect_max_delay;
        return o;
    }

    static std::int64_t now_ms() {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }

    std::string ttl_ms() const { return std::to_string(config_.ttl.count()); }

    // The janitor's indexes of an instance (its connections and presence
    // entries) must outlive its heartbeat by a janitor round or they would
    // expire before anyone read them: 2 x ttl + janitor_interval.
    std::int64_t index_ttl() const { return 2 * config_.ttl.count() + config_.janitor_interval.count(); }
    std::string index_ttl_ms() const { return std::to_string(index_ttl()); }

    static std::string_view string_of(const redisReply* r) {
        return r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
                   ? std::string_view(r->str, r->len)
                   : std::string_view();
    }

    static std::error_code read_record(Reply reply, const std::string& connection, ConnectionRecord& record) {
        if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
            return make_error_code(error::unavailable);
        }
        if (reply->element[0]->type != REDIS_REPLY_STRING || reply->element[1]->type != REDIS_REPLY_STRING) {
            return make_error_code(error::not_found);  // never registered, removed, or its instance is dead
        }
        const auto value = detail::registry_keys::decode_conn(string_of(reply->element[0]));
        if (!value) return make_error_code(error::not_found);
        record.connection = connection;
        record.instance = value->instance;
        record.user = value->user;
        record.since_ms = value->since_ms;
        return {};
    }

    void log(LogLevel level, const std::string& line) const {
        if (log_) log_(level, line);
    }

    // Calls done(args...) later on the executor, never inside the caller's
    // call, and not at all once this registry is destroyed (handlers may
    // capture it).
    template <class Handler, class... Args>
    void post(Handler done, Args... args) {
        if (!done) return;
        asio::post(executor_, [alive = std::weak_ptr<char>(alive_), done = std::move(done), args...]() mutable {
            if (alive.lock()) done(std::move(args)...);
        });
    }

    // A write whose reply only matters when it is an error (logged once per heartbeat round).
    void cmd(const std::vector<std::string>& args) {
        client_.command(args, [this, alive = std::weak_ptr<char>(alive_)](std::error_code ec, Reply reply) {
            if (!alive.lock()) return;
            if (!ec && reply != nullptr && reply->type == REDIS_REPLY_ERROR && !write_error_logged_) {
                write_error_logged_ = true;
                log(LogLevel::warn, "registry: Redis refused a write: " + std::string(reply->str, reply->len));
            }
        });
    }

    std::vector<std::string> local_ids() const {
        std::vector<std::string> ids;
        ids.reserve(conns_.size());
        for (const auto& entry : conns_) ids.push_back(entry.first);
        return ids;
    }

    // ---- delivery -----------------------------------------------------------------

    // done(ec, heard): heard is false when no instance listens on that inbox (it is gone).
    void publish_inbox(const std::string& instance, std::string payload, std::function<void(std::error_code, bool)> done) {
        client_.command({"PUBLISH", detail::registry_keys::inbox(prefix_, instance), std::move(payload)},
                        [this, done = std::move(done)](std::error_code ec, Reply reply) {
                            if (ec || reply == nullptr || reply->type != REDIS_REPLY_INTEGER) {
                                return done(make_error_code(error::unavailable), false);
                            }
                            if (reply->integer > 0) ++stats_.direct_sent;
                            done({}, reply->integer > 0);
                        });
    }

    // Publishes to the inbox of each instance of `instances` whose heartbeat is alive.
    void publish_to_live(std::vector<std::string> instances, std::string payload, DeliveryHandler done) {
        read_heartbeats(std::move(instances), [this, payload = std::move(payload), done = std::move(done)](
                                                  std::error_code ec, std::vector<std::string> ids,
                                                  std::vector<std::optional<std::string>> beats) mutable {
            if (ec) return done(ec, 0);
            struct Tally {
                std::size_t waiting = 0, reached = 0;
                bool failed = false;
                DeliveryHandler done;
            };
            auto tally = std::make_shared<Tally>();
            tally->done = std::move(done);
            for (const auto& beat : beats) {
                if (beat) ++tally->waiting;
            }
            if (tally->waiting == 0) return tally->done({}, 0);
            for (std::size_t i = 0; i < ids.size(); ++i) {
                if (!beats[i]) continue;
                publish_inbox(ids[i], payload, [tally](std::error_code e, bool heard) {
                    if (e) tally->failed = true;
                    if (heard) ++tally->reached;
                    if (--tally->waiting == 0) {
                        tally->done(tally->failed && tally->reached == 0 ? make_error_code(error::unavailable)
                                                                         : std::error_code{},
                                    tally->reached);
                    }
                });
            }
        });
    }

    using HeartbeatsHandler =
        std::function<void(std::error_code, std::vector<std::string>, std::vector<std::optional<std::string>>)>;

    // The heartbeats of `instances`, in their order: the value, or nullopt for
    // an instance whose heartbeat is gone. done(ec, instances, beats) later,
    // on the executor; error::unavailable when Redis cannot tell.
    void read_heartbeats(std::vector<std::string> instances, HeartbeatsHandler done) {
        if (instances.empty()) {
            return post(std::move(done), std::error_code{}, std::vector<std::string>{},
                        std::vector<std::optional<std::string>>{});
        }
        std::vector<std::string> args{"MGET"};
        for (const auto& id : instances) args.push_back(detail::registry_keys::instance(prefix_, id));
        client_.command(args, [alive = std::weak_ptr<char>(alive_), instances = std::move(instances),
                               done = std::move(done)](std::error_code ec, Reply reply) mutable {
            if (!alive.lock()) return;
            if (ec || reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements != instances.size()) {
                return done(make_error_code(error::unavailable), std::move(instances), {});
            }
            std::vector<std::optional<std::string>> beats;
            beats.reserve(instances.size());
            for (std::size_t i = 0; i < instances.size(); ++i) {
                const redisReply* beat = reply->element[i];
                if (beat->type == REDIS_REPLY_STRING) {
                    beats.emplace_back(std::string(beat->str, beat->len));
                } else {
                    beats.emplace_back(std::nullopt);
                }
            }
            done({}, std::move(instances), std::move(beats));
        });
    }

    // Every instance that registered (<p>instances), with its heartbeat.
    void read_all_heartbeats(HeartbeatsHandler done) {
        client_.command({"SMEMBERS", detail::registry_keys::instances(prefix_)},
                        [this, alive = std::weak_ptr<char>(alive_), done = std::move(done)](std::error_code ec,
                                                                                         Reply reply) mutable {
                            if (!alive.lock()) return;
                            if (ec || reply == nullptr || reply->type != REDIS_REPLY_ARRAY) {
                                return done(make_error_code(error::unavailable), {}, {});
                            }
                            std::vector<std::string> ids;
                            ids.reserve(reply->elements);
                            for (std::size_t i = 0; i < reply->elements; ++i) ids.emplace_back(string_of(reply->element[i]));
                            read_heartbeats(std::move(ids), std::move(done));
                        });
    }

    // ---- keeping the entries alive --------------------------------------------------

    // Writes go to Redis only while the link is up and this instance has
    // taken over its id (see on_up); otherwise they wait in local state.
    bool writable() const noexcept { return client_.up() && ready_; }

    std::string expiry_ms() const { return std::to_string(now_ms() + config_.ttl.count()); }

    // (Re)connected: Redis may have restarted empty, kept entries of
    // connections that closed while it was unreachable, or (first time only)
    // hold what an earlier run of this instance id left behind.
    void on_up() {
        if (closing_) return;
        stats_.up = true;
        if (took_over_id_) return restore();
        // First connection: clean up after an earlier run with this id (a
        // crash and restart). Its connection ids are not ours: the hub numbers
        // each run apart. Nothing of ours is written before that is done.
        client_.command({"EVAL", std::string(detail::registry_scripts::clean_instance), "0", prefix_, instance_, "1"},
                        [this, alive = std::weak_ptr<char>(alive_)](std::error_code ec, Reply reply) {
                            if (!alive.lock() || ec) return;  // link lost: the next on_up tries again
                            if (const auto removed = announce_cleaned(instance_, reply); removed && removed->had_beat) {
                                log(LogLevel::warn, "registry: instance id " + instance_ +
                                                        " was registered already (a restart within the TTL, or "
                                                        "another live instance with this id: ids must be unique); "
                                                        "its entries were removed");
                            }
                            took_over_id_ = true;
                            if (client_.up() && !closing_) restore();
                        });
    }

    void on_down() {
        stats_.up = false;
        ready_ = false;  // back through on_up's restore()
        std::lock_guard<std::mutex> lock(cluster_mutex_);
        cluster_.known = false;  // stale figures would look current
    }

    // Rebuild this instance's indexes from its own state and write every
    // entry again; presence members that were gone get their `join` again.
    void restore() {
        ready_ = true;
        ++stats_.reregistrations;
        for (const auto& [connection, user] : removed_while_down_) {
            cmd({"DEL", detail::registry_keys::conn(prefix_, connection)});
            if (!user.empty()) cmd({"ZREM", detail::registry_keys::user(prefix_, user), connection});
        }
        removed_while_down_.clear();
        for (const auto& [channel, member] : presence_removed_while_down_) {
            cmd({"ZREM", detail::registry_keys::presence(prefix_, channel), member});
        }
        presence_removed_while_down_.clear();
        cmd({"DEL", detail::registry_keys::instance_conns(prefix_, instance_),
             detail::registry_keys::instance_presence(prefix_, instance_)});
        write_everything();
    }

    void arm_heartbeat() {
        heartbeat_timer_.expires_after(config_.heartbeat_interval);
        heartbeat_timer_.async_wait([this, alive = std::weak_ptr<char>(alive_)](std::error_code ec) {
            if (ec || !alive.lock() || closing_) return;
            if (writable()) {
                if (client_.pending_commands() > 4 * (conns_.size() + 64)) {
                    log(LogLevel::warn, "registry: Redis is behind; skipping a heartbeat round");
                } else {
                    write_everything();
                }
            }
            arm_heartbeat();
        });
    }

    // Writes the heartbeat and every entry of this instance again, with fresh
    // TTLs, pipelined (index fields and set members in batches); sweeps what
    // expired long ago from the user and presence sets it touches; then reads
    // the cluster's heartbeats.
    void write_everything() {
        write_error_logged_ = false;
        ++stats_.heartbeats;
        const auto ttl = ttl_ms();
        const auto expiry = expiry_ms();
        // The heartbeat before the index entry: the janitor never sees this
        // instance listed without a heartbeat.
        cmd({"SET", detail::registry_keys::instance(prefix_, instance_), detail::registry_keys::encode_heartbeat(conns_.size(), started_ms_, config_.address),
             "PX", ttl});
        cmd({"SADD", detail::registry_keys::instances(prefix_), instance_});
        cmd({"PEXPIRE", detail::registry_keys::instances(prefix_), ttl});

        const auto conns_key = detail::registry_keys::instance_conns(prefix_, instance_);
        const auto presence_key = detail::registry_keys::instance_presence(prefix_, instance_);
        std::vector<std::string> hset{"HSET", conns_key};
        std::unordered_map<std::string, std::vector<std::string>> by_user;  // user -> ZADD arguments
        std::unordered_set<std::string> presence_channels;
        std::vector<std::string> entries{"SADD", presence_key};
        const auto flush = [&](std::vector<std::string>& args, std::size_t head, bool force) {
            if (args.size() > head && (force || args.size() - head >= 2 * config_.refresh_batch)) {
                cmd(args);
                args.resize(head);
            }
        };
        for (const auto& [id, local] : conns_) {
            cmd({"SET", detail::registry_keys::conn(prefix_, id), detail::registry_keys::encode_conn(instance_, local.since_ms, local.user), "PX", ttl});
            hset.push_back(id);
            hset.push_back(local.user);
            flush(hset, 2, false);
            if (!local.user.empty()) {
                auto& zadd = by_user[local.user];
                if (zadd.empty()) zadd = {"ZADD", detail::registry_keys::user(prefix_, local.user)};
                zadd.push_back(expiry);
                zadd.push_back(id);
                flush(zadd, 2, false);
            }
            for (const auto& channel : local.presence) {
                const auto member = detail::registry_keys::presence_member(id, local.user);
                refresh_presence_member(channel, member, expiry, id, local.user);
                presence_channels.insert(channel);
                entries.push_back(detail::registry_keys::presence_entry(channel, member));
                flush(entries, 2, false);
            }
        }
        flush(hset, 2, true);
        cmd({"PEXPIRE", conns_key, index_ttl_ms()});
        flush(entries, 2, true);
        cmd({"PEXPIRE", presence_key, index_ttl_ms()});
        // Expired user entries are dead instances' connections: no one reads them
        // (send_to_user skips them), so they are simply dropped.
        const auto expired = "(" + std::to_string(now_ms());
        for (auto& [user, zadd] : by_user) {
            flush(zadd, 2, true);
            const auto key = detail::registry_keys::user(prefix_, user);
            cmd({"PEXPIRE", key, ttl});
            cmd({"ZREMRANGEBYSCORE", key, "-inf", expired});
        }
        for (const auto& channel : presence_channels) {
            cmd({"PEXPIRE", detail::registry_keys::presence(prefix_, channel), index_ttl_ms()});
            sweep_presence(channel);
        }
        read_cluster();
    }

    // One ZADD per presence member, not batched: a member that was missing (the
    // janitor took this instance for dead during a long outage, or Redis
    // restarted empty) is announced with `join` again, so the others' member
    // lists are right once more.
    void refresh_presence_member(const std::string& channel, const std::string& member, const std::string& expiry,
                                 const std::string& connection, const std::string& user) {
        client_.command({"ZADD", detail::registry_keys::presence(prefix_, channel), expiry, member},
                        [this, channel, connection, user, alive = std::weak_ptr<char>(alive_)](std::error_code ec,
                                                                                            Reply reply) {
                            if (ec || !alive.lock() || reply == nullptr || reply->type != REDIS_REPLY_INTEGER ||
                                reply->integer == 0) {
                                return;
                            }
                            const auto it = conns_.find(connection);
                            if (it == conns_.end()) return;  // left meanwhile: its ZREM follows
                            const auto& now_in = it->second.presence;
                            if (std::find(now_in.begin(), now_in.end(), channel) == now_in.end()) return;
                            cmd({"PUBLISH", detail::channel_topic(prefix_, channel),
                                 detail::encode_presence_event(true, connection, user)});
                        });
    }

    // Members nobody refreshed for longer than the janitor needs are
    // leftovers (a leave lost while Redis was unreachable, an instance whose
    // index expired before a janitor read it): remove them, and announce each
    // leave, as the janitor would. Younger expired ones are the janitor's.
    void sweep_presence(const std::string& channel) {
        const auto stale = "(" + std::to_string(now_ms() - index_ttl());
        client_.command({"ZRANGEBYSCORE", detail::registry_keys::presence(prefix_, channel), "-inf", stale},
                        [this, channel, alive = std::weak_ptr<char>(alive_)](std::error_code ec, Reply reply) {
                            if (ec || !alive.lock() || reply == nullptr || reply->type != REDIS_REPLY_ARRAY) return;
                            for (std::size_t i = 0; i < reply->elements; ++i) {
                                remove_presence_member(channel, string_of(reply->element[i]));
                            }
                        });
    }

    // Removes one member ("<connection> <user>") of a presence channel that
    // is not ours, and publishes its `leave`. Several instances may try at
    // once (janitor, sweep): only the one whose ZREM removed it announces.
    void remove_presence_member(const std::string& channel, std::string_view member) {
        if (!detail::registry_keys::split_presence_member(member)) return;
        client_.command({"ZREM", detail::registry_keys::presence(prefix_, channel), std::string(member)},
                        [this, channel, member = std::string(member), alive = std::weak_ptr<char>(alive_)](
                            std::error_code ec, Reply reply) {
                            if (ec || !alive.lock() || reply == nullptr || reply->type != REDIS_REPLY_INTEGER ||
                                reply->integer == 0) {
                                return;
                            }
                            announce_leave(channel, member);
                        });
    }

    void announce_leave(const std::string& channel, std::string_view member) {
        const auto split = detail::registry_keys::split_presence_member(member);
        if (!split) return;
        cmd({"PUBLISH", detail::channel_topic(prefix_, channel),
             detail::encode_presence_event(false, split->connection, split->user)});
    }

    void read_cluster() {
        read_all_heartbeats([this](std::error_code ec, std::vector<std::string> ids,
                                   std::vector<std::optional<std::string>> beats) {
            if (ec) return;
            ClusterStats cluster;
            cluster.known = true;
            for (std::size_t i = 0; i < ids.size(); ++i) {
                const auto beat = beats[i] ? detail::registry_keys::decode_heartbeat(*beats[i]) : std::nullopt;
                if (!beat) continue;  // dead (or not ours): the janitor's business
                cluster.connections += beat->connections;
                cluster.instances.emplace_back(ids[i], beat->connections);
            }
            std::sort(cluster.instances.begin(), cluster.instances.end());
            std::lock_guard<std::mutex> lock(cluster_mutex_);
            cluster_ = std::move(cluster);
        });
    }

    // ---- the janitor ------------------------------------------------------------------

    void arm_janitor() {
        std::uniform_int_distribution<std::int64_t> jitter(-config_.janitor_interval.count() / 10,
                                                          config_.janitor_interval.count() / 10);
        janitor_timer_.expires_after(config_.janitor_interval + std::chrono::milliseconds(jitter(rng_)));
        janitor_timer_.async_wait([this, alive = std::weak_ptr<char>(alive_)](std::error_code ec) {
            if (ec || !alive.lock() || closing_) return;
            janitor();
            arm_janitor();
        });
    }

    void janitor() {
        if (!writable() || closing_ || janitor_busy_) return;
        const auto lock_ms = std::to_string(std::max<std::int64_t>(1000, config_.janitor_interval.count() / 2));
        client_.command({"SET", detail::registry_keys::janitor_lock(prefix_), instance_, "NX", "PX", lock_ms},
                        [this, alive = std::weak_ptr<char>(alive_)](std::error_code ec, Reply reply) {
                            if (ec || !alive.lock() || reply == nullptr || reply->type != REDIS_REPLY_STATUS) return;
                            ++stats_.janitor_runs;
                            janitor_busy_ = true;
                            find_dead_instances();
                        });
    }

    void find_dead_instances() {
        read_all_heartbeats([this](std::error_code ec, std::vector<std::string> ids,
                                   std::vector<std::optional<std::string>> beats) {
            janitor_busy_ = false;
            if (ec) return;
            for (std::size_t i = 0; i < ids.size(); ++i) {
                if (!beats[i] && ids[i] != instance_) clean_instance(ids[i]);
            }
        });
    }

    // The script checks again, atomically, that the heartbeat is gone: an
    // instance that came back since the MGET keeps its entries.
    void clean_instance(const std::string& id) {
        client_.command({"EVAL", std::string(detail::registry_scripts::clean_instance), "0", prefix_, id, "0"},
                        [this, id, alive = std::weak_ptr<char>(alive_)](std::error_code ec, Reply reply) {
                            if (ec || !alive.lock()) return;
                            const auto removed = announce_cleaned(id, reply);
                            if (!removed) return;  // alive after all, or a refused script (logged)
                            ++stats_.instances_cleaned;
                            stats_.entries_cleaned += removed->connections + removed->presence;
                            log(LogLevel::info, "janitor: removed dead instance " + id + ": " +
                                                    std::to_string(removed->connections) + " connections, " +
                                                    std::to_string(removed->presence) + " presence entries");
                        });
    }

    struct Cleaned {
        std::uint64_t connections = 0;
        std::uint64_t presence = 0;
        bool had_beat = false;
    };

    // Reads the cleanup script's reply and announces `leave` for each presence
    // member it removed; nullopt when it removed nothing (nil reply) or failed.
    std::optional<Cleaned> announce_cleaned(const std::string& id, Reply reply) {
        if (reply == nullptr || reply->type == REDIS_REPLY_NIL) return std::nullopt;
        if (reply->type == REDIS_REPLY_ERROR) {
            log(LogLevel::warn, "registry: Redis refused the cleanup script for " + id + ": " +
                                    std::string(reply->str, reply->len));
            return std::nullopt;
        }
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
            reply->element[0]->type != REDIS_REPLY_INTEGER || reply->element[1]->type != REDIS_REPLY_INTEGER ||
            reply->element[2]->type != REDIS_REPLY_ARRAY) {
            return std::nullopt;
        }
        const redisReply* left = reply->element[2];
        Cleaned cleaned;
        cleaned.connections = static_cast<std::uint64_t>(reply->element[0]->integer);
        cleaned.had_beat = reply->element[1]->integer == 1;
        for (std::size_t i = 0; i + 1 < left->elements; i += 2) {
            announce_leave(std::string(string_of(left->element[i])), string_of(left->element[i + 1]));
            ++cleaned.presence;
        }
        return cleaned;
    }

    asio::any_io_executor executor_;
    ConnectionRegistryConfig config_;
    LogSink log_;
    detail::RedisClient client_;
    asio::steady_timer heartbeat_timer_;
    asio::steady_timer janitor_timer_;
    std::mt19937_64 rng_{std::random_device{}()};

    std::string instance_;
    std::string prefix_;
    std::int64_t started_ms_ = 0;
    bool started_ = false;
    bool closing_ = false;
    bool janitor_busy_ = false;
    bool ready_ = false;         // writes go to Redis (see writable())
    bool took_over_id_ = false;  // an earlier run's leftovers were removed (once, at the first connection)
    bool write_error_logged_ = false;
    std::unordered_map<std::string, Local> conns_;
    static constexpr std::size_t max_removed_while_down = 100'000;
    std::vector<std::pair<std::string, std::string>> removed_while_down_;           // connection -> user
    std::vector<std::pair<std::string, std::string>> presence_removed_while_down_;  // channel -> member

    struct Counters {
        std::atomic<std::uint64_t> heartbeats{0}, reregistrations{0}, janitor_runs{0}, instances_cleaned{0},
            entries_cleaned{0}, direct_sent{0};
        std::atomic<bool> up{false};
    } stats_;
    mutable std::mutex cluster_mutex_;
    ClusterStats cluster_;
    std::shared_ptr<char> alive_ = std::make_shared<char>(0);  // weak_ptrs in handlers see destruction
};

}  // namespace wshub
