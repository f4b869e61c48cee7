// RedisPubSub against a real redis-server: lazy subscriptions seen from Redis
// itself, batching, cross-instance delivery, and recovery from kill -9,
// SIGSTOP and CLIENT KILL without silent loss. Hubs run on the in-memory
// transport here; tests/e2e/ runs chat_server processes over Redis.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string_view>
#include <system_error>

#include "support/fast_redis_config.hpp"
#include "support/json_reader.hpp"
#include "support/memory_transport.hpp"
#include "support/redis_server.hpp"
#include "support/run_until.hpp"
#include "wshub/hub.hpp"
#include "wshub/redis_pubsub.hpp"

using namespace wshub;
using namespace wshub::test;
using namespace std::chrono_literals;

namespace {

// One instance: a hub on the in-memory transport over RedisPubSub.
struct Instance {
    Instance(asio::io_context& io, const RedisServer& redis, const std::string& id)
        : pubsub(io.get_executor(), fast_pubsub_config(redis)), hub(io.get_executor(), transport, pubsub, config_for(id)) {}

    static HubConfig config_for(const std::string& id) {
        HubConfig config;
        config.instance_id = id;
        config.prefix = "t:";
        config.publish_rate_per_second = 0;
        config.max_subscriptions_per_connection = 1000;
        return config;
    }

    std::vector<std::string> received_of_type(ConnectionId id, const std::string& type) const {
        return frames_of_type(transport.peer(id).received, type);
    }

    MemoryTransport transport;
    RedisPubSub pubsub;
    Hub<MemoryTransport, RedisPubSub> hub;
};

std::set<std::string> channels_in_redis(const RedisServer& redis) {
    const auto list = redis.cli_list("PUBSUB", "CHANNELS", "t:ch:*");
    return {list.begin(), list.end()};
}

long long subscribe_calls(const RedisServer& redis) {
    const auto stats = redis.info_field("commandstats", "cmdstat_subscribe");  // "calls=N,usec=..."
    if (stats.empty()) return 0;
    return std::stoll(stats.substr(6, stats.find(',') - 6));
}

}  // namespace

TEST_CASE("Redis sees a channel exactly while a local client is subscribed, never a pattern", "[redis][pubsub]") {
    RedisServer redis;
    asio::io_context io;
    Instance a(io, redis, "a");
    REQUIRE(run_until(io, [&] { return a.pubsub.state() == PubSubState::up; }));

    const auto c1 = a.transport.connect();
    const auto c2 = a.transport.connect();
    a.transport.receive(c1, R"({"type":"subscribe","channel":"room","id":1})");
    REQUIRE(run_until(io, [&] { return !a.received_of_type(c1, "ack").empty(); }));
    CHECK(channels_in_redis(redis) == std::set<std::string>{"t:ch:room"});
    CHECK(a.pubsub.stats().channels == 1);
    a.transport.receive(c2, R"({"type":"subscribe","channel":"room","id":1})");
    REQUIRE(run_until(io, [&] { return !a.received_of_type(c2, "ack").empty(); }));
    a.transport.receive(c1, R"({"type":"unsubscribe","channel":"room"})");
    settle(io);
    CHECK(channels_in_redis(redis) == std::set<std::string>{"t:ch:room"});  // c2 is still there
    a.transport.disconnect(c2);
    REQUIRE(run_until(io, [&] { return channels_in_redis(redis).empty(); }));
    CHECK(redis.cli("PUBSUB", "NUMPAT") == "0");
    CHECK(a.pubsub.stats().channels == 0);
}

TEST_CASE("1,000 channels joined and left in random order by 50 clients: Redis holds exactly the wanted set",
          "[redis][pubsub]") {
    RedisServer redis;
    asio::io_context io;
    Instance a(io, redis, "a");
    REQUIRE(run_until(io, [&] { return a.pubsub.state() == PubSubState::up; }));
    std::vector<ConnectionId> clients;
    for (int i = 0; i < 50; ++i) clients.push_back(a.transport.connect());
    settle(io);
    const long long subscribes_before = subscribe_calls(redis);

    std::mt19937 rng(12345);
    std::vector<std::set<int>> joined(clients.size());
    for (int step = 0; step < 4000; ++step) {
        const std::size_t c = rng() % clients.size();
        const int channel = static_cast<int>(rng() % 1000);
        const std::string name = "c" + std::to_string(channel);
        if (joined[c].count(channel) != 0 && rng() % 3 == 0) {
            a.transport.receive(clients[c], R"({"type":"unsubscribe","channel":")" + name + R"("})");
            joined[c].erase(channel);
        } else if (joined[c].count(channel) == 0) {
            a.transport.receive(clients[c], R"({"type":"subscribe","channel":")" + name + R"("})");
            joined[c].insert(channel);
        }
        if (step % 200 == 0) settle(io);  // several ticks, each with many requests
    }
    std::set<std::string> wanted;
    for (const auto& set : joined) {
        for (int channel : set) wanted.insert("t:ch:c" + std::to_string(channel));
    }
    REQUIRE(run_until(io, [&] { return channels_in_redis(redis) == wanted; }));
    const long long subscribes = subscribe_calls(redis) - subscribes_before;
    INFO("SUBSCRIBE commands: " << subscribes << " for " << wanted.size() << " channels");
    CHECK(subscribes < 100);  // batched: far below one per channel
    CHECK(redis.cli("PUBSUB", "NUMPAT") == "0");
}

TEST_CASE("a publish on one instance reaches subscribers on both, in order", "[redis][pubsub]") {
    RedisServer redis;
    asio::io_context io;
    Instance a(io, redis, "a");
    Instance b(io, redis, "b");
    REQUIRE(run_until(io, [&] { return a.pubsub.state() == PubSubState::up && b.pubsub.state() == PubSubState::up; }));
    const auto on_a = a.transport.connect();
    const auto on_b = b.transport.connect();
    a.transport.receive(on_a, R"({"type":"subscribe","channel":"room","id":1})");
    b.transport.receive(on_b, R"({"type":"subscribe","channel":"room","id":1})");
    REQUIRE(run_until(io, [&] {
        return !a.received_of_type(on_a, "ack").empty() && !b.received_of_type(on_b, "ack").empty();
    }));
    constexpr int count = 2000;
    for (int i = 0; i < count; ++i) {
        a.transport.receive(on_a, R"({"type":"publish","channel":"room","data":)" + std::to_string(i) + "}");
    }
    REQUIRE(run_until(io, [&] {
        return a.received_of_type(on_a, "message").size() == count && b.received_of_type(on_b, "message").size() == count;
    }));
    const auto messages = b.received_of_type(on_b, "message");
    for (int i = 0; i < count; ++i) REQUIRE(parse_frame(messages[i])["data"].GetInt() == i);
}

TEST_CASE("kill -9 of Redis: publishes fail fast, restart resubscribes, subscribers get gap", "[redis][pubsub][outage]") {
    RedisServer redis;
    asio::io_context io;
    Instance a(io, redis, "a");
    Instance b(io, redis, "b");
    REQUIRE(run_until(io, [&] { return a.pubsub.state() == PubSubState::up && b.pubsub.state() == PubSubState::up; }));
    const auto pub = a.transport.connect();
    const auto sub = b.transport.connect();
    b.transport.receive(sub, R"({"type":"subscribe","channel":"room","id":1})");
    REQUIRE(run_until(io, [&] { return !b.received_of_type(sub, "ack").empty(); }));

    redis.kill9();
    REQUIRE(run_until(io, [&] { return a.pubsub.state() == PubSubState::down && b.pubsub.state() == PubSubState::down; }));
    a.transport.receive(pub, R"({"type":"publish","channel":"room","data":1,"id":"lost"})");
    REQUIRE(run_until(io, [&] { return !a.received_of_type(pub, "error").empty(); }));
    CHECK(string_field(a.received_of_type(pub, "error").back(), "code") == "unavailable");

    redis.restart();
    const auto back = std::chrono::steady_clock::now();
    REQUIRE(run_until(io, [&] { return !b.received_of_type(sub, "gap").empty(); }));
    INFO("resubscribed after " << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - back).count() << " ms");
    CHECK(channels_in_redis(redis) == std::set<std::string>{"t:ch:room"});
    REQUIRE(run_until(io, [&] { return a.pubsub.state() == PubSubState::up; }));
    a.transport.receive(pub, R"({"type":"publish","channel":"room","data":2,"id":"ok"})");
    REQUIRE(run_until(io, [&] { return !b.received_of_type(sub, "message").empty(); }));
    CHECK(parse_frame(b.received_of_type(sub, "message").back())["data"].GetInt() == 2);
}

TEST_CASE("a frozen Redis (SIGSTOP) is detected, and recovered from after SIGCONT", "[redis][pubsub][outage]") {
    RedisServer redis;
    asio::io_context io;
    Instance a(io, redis, "a");
    REQUIRE(run_until(io, [&] { return a.pubsub.state() == PubSubState::up; }));
    const auto sub = a.transport.connect();
    a.transport.receive(sub, R"({"type":"subscribe","channel":"room","id":1})");
    REQUIRE(run_until(io, [&] { return !a.received_of_type(sub, "ack").empty(); }));

    redis.stop_process();
    REQUIRE(run_until(io, [&] { return a.pubsub.state() == PubSubState::down; }));
    redis.cont_process();
    REQUIRE(run_until(io, [&] { return !a.received_of_type(sub, "gap").empty(); }));
    CHECK(a.pubsub.state() == PubSubState::up);
    a.transport.receive(sub, R"({"type":"publish","channel":"room","data":3})");
    REQUIRE(run_until(io, [&] { return !a.received_of_type(sub, "message").empty(); }));
}

TEST_CASE("CLIENT KILL TYPE pubsub is recovered like any disconnect", "[redis][pubsub][outage]") {
    RedisServer redis;
    asio::io_context io;
    Instance a(io, redis, "a");
    REQUIRE(run_until(io, [&] { return a.pubsub.state() == PubSubState::up; }));
    const auto sub = a.transport.connect();
    a.transport.receive(sub, R"({"type":"subscribe","channel":"room","id":1})");
    REQUIRE(run_until(io, [&] { return !a.received_of_type(sub, "ack").empty(); }));
    const auto reconnects = a.pubsub.stats().reconnects;

    redis.cli("CLIENT", "KILL", "TYPE", "pubsub");
    REQUIRE(run_until(io, [&] { return !a.received_of_type(sub, "gap").empty(); }));
    CHECK(a.pubsub.stats().reconnects == reconnects + 1);
    CHECK(channels_in_redis(redis) == std::set<std::string>{"t:ch:room"});
    a.transport.receive(sub, R"({"type":"publish","channel":"room","data":4})");
    REQUIRE(run_until(io, [&] { return !a.received_of_type(sub, "message").empty(); }));
}

TEST_CASE("a host name is resolved without blocking, and works", "[redis][pubsub]") {
    RedisServer redis;
    asio::io_context io;
    RedisPubSubConfig config = fast_pubsub_config(redis);
    config.url = "redis://localhost:" + std::to_string(redis.port());
    RedisPubSub pubsub(io.get_executor(), config);
    REQUIRE(run_until(io, [&] { return pubsub.state() == PubSubState::up; }));
    std::error_code result = make_error_code(error::internal);
    bool done = false;
    pubsub.publish("t:ch:x", "w1 a\n1", [&](std::error_code ec) {
        result = ec;
        done = true;
    });
    REQUIRE(run_until(io, [&] { return done; }));
    CHECK_FALSE(result);
}

TEST_CASE("a bad URL is refused at construction with a clear message", "[redis][pubsub]") {
    asio::io_context io;
    RedisPubSubConfig config;
    config.url = "http://nope";
    CHECK_THROWS_WITH(RedisPubSub(io.get_executor(), config), Catch::Contains("bad Redis URL"));
}

namespace {

long long unsubscribe_calls(const RedisServer& redis) {
    const auto stats = redis.info_field("commandstats", "cmdstat_unsubscribe");  // "calls=N,usec=..."
    if (stats.empty()) return 0;
    return std::stoll(stats.substr(6, stats.find(',') - 6));
}

// A RedisPubSub on its own (no hub), up, with its health channel's SUBSCRIBE
// already counted by Redis, so that later counts see only the test's commands.
void wait_up_and_counted(asio::io_context& io, RedisPubSub& pubsub, const RedisServer& redis,
                         const std::string& health_channel) {
    REQUIRE(run_until(io, [&] { return pubsub.state() == PubSubState::up; }));
    REQUIRE(run_until(io, [&] { return !redis.cli_list("PUBSUB", "CHANNELS", health_channel).empty(); }));
}

}  // namespace

TEST_CASE("an unsubscribe in the same tick as its subscribe sends nothing, and the subscribe hears an error",
          "[redis][pubsub]") {
    RedisServer redis;
    asio::io_context io;
    RedisPubSubConfig config = fast_pubsub_config(redis);
    config.health_channel = "t:health:same-tick";
    RedisPubSub pubsub(io.get_executor(), config);
    wait_up_and_counted(io, pubsub, redis, config.health_channel);
    const long long subscribes_before = subscribe_calls(redis);
    const long long unsubscribes_before = unsubscribe_calls(redis);
    const auto stats_before = pubsub.stats();

    std::optional<std::error_code> subscribed, unsubscribed;
    pubsub.subscribe("t:ch:a", [&](std::error_code ec) { subscribed = ec; });
    pubsub.unsubscribe("t:ch:a", [&](std::error_code ec) { unsubscribed = ec; });
    CHECK_FALSE(subscribed.has_value());  // never from inside the call
    CHECK_FALSE(unsubscribed.has_value());
    REQUIRE(run_until(io, [&] { return subscribed && unsubscribed; }));
    CHECK(*subscribed == std::errc::operation_canceled);  // success would mean subscribed
    CHECK_FALSE(*unsubscribed);

    // A later subscribe on the same connection: once it is confirmed, Redis
    // has processed anything sent before it.
    std::optional<std::error_code> other;
    pubsub.subscribe("t:ch:b", [&](std::error_code ec) { other = ec; });
    REQUIRE(run_until(io, [&] { return other.has_value(); }));
    CHECK_FALSE(*other);
    CHECK(subscribe_calls(redis) - subscribes_before == 1);  // t:ch:b's only
    CHECK(unsubscribe_calls(redis) - unsubscribes_before == 0);
    CHECK(pubsub.stats().subscribe_commands - stats_before.subscribe_commands == 1);
    CHECK(pubsub.stats().unsubscribe_commands - stats_before.unsubscribe_commands == 0);
    CHECK(channels_in_redis(redis) == std::set<std::string>{"t:ch:b"});
    CHECK(pubsub.stats().channels == 1);

    // t:ch:a is not half-known: a fresh subscribe to it works.
    subscribed.reset();
    pubsub.subscribe("t:ch:a", [&](std::error_code ec) { subscribed = ec; });
    REQUIRE(run_until(io, [&] { return subscribed.has_value(); }));
    CHECK_FALSE(*subscribed);
    CHECK(channels_in_redis(redis) == std::set<std::string>{"t:ch:a", "t:ch:b"});
}

TEST_CASE("an unsubscribe after the SUBSCRIBE went out: the subscribe hears an error, Redis ends unsubscribed",
          "[redis][pubsub]") {
    RedisServer redis;
    asio::io_context io;
    RedisPubSubConfig config = fast_pubsub_config(redis);
    config.health_channel = "t:health:sent";
    // Redis is frozen for a moment below: no timeout may fire meanwhile.
    config.command_timeout = 20000ms;
    config.health_check_timeout = 20000ms;
    RedisPubSub pubsub(io.get_executor(), config);
    wait_up_and_counted(io, pubsub, redis, config.health_channel);
    const auto stats_before = pubsub.stats();

    // Frozen, Redis cannot confirm: the subscribe stays unconfirmed after its SUBSCRIBE is sent.
    redis.stop_process();
    std::optional<std::error_code> subscribed, unsubscribed;
    pubsub.subscribe("t:ch:a", [&](std::error_code ec) { subscribed = ec; });
    REQUIRE(run_until(io, [&] { return pubsub.stats().subscribe_commands == stats_before.subscribe_commands + 1; }));
    pubsub.unsubscribe("t:ch:a", [&](std::error_code ec) { unsubscribed = ec; });
    REQUIRE(run_until(io, [&] { return subscribed.has_value(); }));
    CHECK(*subscribed == std::errc::operation_canceled);
    CHECK_FALSE(unsubscribed.has_value());  // that one needs Redis's confirmation

    redis.cont_process();
    REQUIRE(run_until(io, [&] { return unsubscribed.has_value(); }));
    CHECK_FALSE(*unsubscribed);
    CHECK(pubsub.state() == PubSubState::up);
    CHECK(channels_in_redis(redis).empty());
    CHECK(pubsub.stats().channels == 0);
    CHECK(pubsub.stats().unsubscribe_commands == stats_before.unsubscribe_commands + 1);
}

TEST_CASE("95 channels asked for in one tick go out as exactly 10 SUBSCRIBE commands of at most 10",
          "[redis][pubsub]") {
    RedisServer redis;
    asio::io_context io;
    RedisPubSubConfig config = fast_pubsub_config(redis);
    config.health_channel = "t:health:batches";
    config.max_channels_per_command = 10;
    RedisPubSub pubsub(io.get_executor(), config);
    wait_up_and_counted(io, pubsub, redis, config.health_channel);
    const long long subscribes_before = subscribe_calls(redis);

    std::set<std::string> wanted;
    int ok = 0;
    int failed = 0;
    for (int i = 0; i < 95; ++i) {
        const std::string topic = "t:ch:" + std::to_string(i);
        wanted.insert(topic);
        pubsub.subscribe(topic, [&](std::error_code ec) { ++(ec ? failed : ok); });
    }
    REQUIRE(run_until(io, [&] { return ok + failed == 95; }));
    CHECK(failed == 0);
    CHECK(subscribe_calls(redis) - subscribes_before == 10);
    CHECK(channels_in_redis(redis) == wanted);
    CHECK(pubsub.stats().channels == 95);
}

// Destroying a RedisPubSub must leave nothing behind that runs into freed
// memory: each case destroys it with one kind of operation pending, then lets
// the io_context run what the destruction cancelled (ASan and TSan builds run
// this too).
TEST_CASE("a RedisPubSub destroyed with its reconnect timer, resolver or health timer pending is clean",
          "[redis][pubsub][lifetime]") {
    constexpr int iterations = 200;
    asio::io_context io;
    const auto drain = [&io] {
        settle(io);
        io.restart();
        io.run_for(2ms);  // short and bounded: whatever the cancellations posted
        settle(io);
    };

    SECTION("reconnect timer pending (nothing listens on the port)") {
        const int port = RedisServer::free_port();
        for (int i = 0; i < iterations; ++i) {
            RedisPubSubConfig config;
            config.url = "redis://127.0.0.1:" + std::to_string(port);
            config.reconnect_initial_delay = 1000ms;  // surely still pending when destroyed
            config.reconnect_max_delay = 1000ms;
            int failures = 0;
            auto pubsub = std::make_unique<RedisPubSub>(
                io.get_executor(), config, [&failures](LogLevel, std::string_view line) {
                    if (line.find("cannot connect") != std::string_view::npos) ++failures;
                });
            // The failure's log line comes from go_down, which arms the reconnect timer.
            REQUIRE(run_until(io, [&] { return failures > 0; }));
            CHECK(pubsub->state() == PubSubState::down);
            pubsub.reset();
            drain();
        }
    }

    SECTION("resolver pending (a host name)") {
        const int port = RedisServer::free_port();
        for (int i = 0; i < iterations; ++i) {
            RedisPubSubConfig config;
            config.url = "redis://localhost:" + std::to_string(port);
            auto pubsub = std::make_unique<RedisPubSub>(io.get_executor(), config);
            io.restart();
            io.poll_one();  // the posted connect(): it starts the asynchronous resolve
            pubsub.reset();
            drain();
        }
    }

    SECTION("health timer pending (connected)") {
        RedisServer redis;
        int published = 0;  // outlives every RedisPubSub: a late completion may still come
        for (int i = 0; i < iterations; ++i) {
            RedisPubSubConfig config = fast_pubsub_config(redis);
            config.health_check_interval = 1000ms;
            auto pubsub = std::make_unique<RedisPubSub>(io.get_executor(), config);
            // Up: the health timer is armed in the same handler.
            REQUIRE(run_until(io, [&] { return pubsub->state() == PubSubState::up; }));
            if (i % 2 == 0) pubsub->publish("t:ch:x", "1", [&published](std::error_code) { ++published; });  // a reply pending too
            pubsub.reset();
            drain();
        }
        CHECK(redis.cli("PING") == "PONG");  // the server is still fine
    }
}
