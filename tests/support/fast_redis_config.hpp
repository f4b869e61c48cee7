// tests/support/fast_redis_config.hpp: Redis client settings for tests
// against a local redis-server: short timeouts and reconnect delays, so an
// outage plays out in well under a second instead of the defaults' seconds.
#pragma once

#include <chrono>
#include <string>

#include "support/redis_server.hpp"
#include "wshub/redis_pubsub.hpp"

namespace wshub::test {

// The connection fields RedisPubSubConfig and ConnectionRegistryConfig share.
template <class Config>
Config fast_redis_config(const RedisServer& redis) {
    using namespace std::chrono_literals;
    Config config;
    config.url = "redis://127.0.0.1:" + std::to_string(redis.port());
    config.connect_timeout = 1000ms;
    config.command_timeout = 1000ms;
    config.reconnect_initial_delay = 50ms;
    config.reconnect_max_delay = 300ms;
    return config;
}

// RedisPubSub's, with a health check that finds a silent server in under a second.
inline RedisPubSubConfig fast_pubsub_config(const RedisServer& redis) {
    using namespace std::chrono_literals;
    auto config = fast_redis_config<RedisPubSubConfig>(redis);
    config.health_check_interval = 200ms;
    config.health_check_timeout = 600ms;
    return config;
}

}  // namespace wshub::test
