// wshub/detail/topics.hpp: how hub names map to PubSub topics and back.
//
// A hub channel `room` is the topic `<prefix>ch:room`; the prefix keeps every
// name the hub uses inside its own namespace. See docs/operations.md for the
// full Redis layout.
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace wshub::detail {

inline std::string channel_topic(std::string_view prefix, std::string_view channel) {
    std::string topic;
    topic.reserve(prefix.size() + 3 + channel.size());
    topic.append(prefix).append("ch:").append(channel);
    return topic;
}

// The channel of a topic made by channel_topic, or nullopt for any other topic.
inline std::optional<std::string_view> channel_of_topic(std::string_view prefix, std::string_view topic) {
    if (topic.size() < prefix.size() + 3 || topic.compare(0, prefix.size(), prefix) != 0 ||
        topic.compare(prefix.size(), 3, "ch:") != 0) {
        return std::nullopt;
    }
    return topic.substr(prefix.size() + 3);
}

// Public connection ids are "<instance>-<number>": unique across instances
// without any coordination, and the instance that holds a connection can be
// read from its id.
inline std::string public_connection_id(std::string_view instance, unsigned long long number) {
    std::string id;
    id.reserve(instance.size() + 21);
    id.append(instance).push_back('-');
    id.append(std::to_string(number));
    return id;
}

struct ParsedConnectionId {
    std::string_view instance;
    unsigned long long number = 0;
};

inline std::optional<ParsedConnectionId> parse_connection_id(std::string_view id) {
    const auto dash = id.rfind('-');
    if (dash == std::string_view::npos || dash == 0 || dash + 1 == id.size() || id.size() - dash - 1 > 20) {
        return std::nullopt;
    }
    constexpr unsigned long long max = ~0ULL;
    unsigned long long number = 0;
    for (char c : id.substr(dash + 1)) {
        if (c < '0' || c > '9') return std::nullopt;
        const auto digit = static_cast<unsigned>(c - '0');
        if (number > (max - digit) / 10) return std::nullopt;  // would overflow
        number = number * 10 + digit;
    }
    return ParsedConnectionId{id.substr(0, dash), number};
}

}  // namespace wshub::detail
