// wshub/pubsub_concept.hpp: what the Hub needs from a PubSub backend, and the
// traits that check it at compile time.
//
// A PubSub carries opaque payloads between hub instances on named topics. The
// requirement, written once (docs/concepts.md says the same in prose):
//
//   class PubSub {
//   public:
//       // Called once, by the Hub's constructor.
//       void set_handlers(wshub::PubSubHandlers handlers);
//
//       // Start receiving `topic`. done(ec): no error means subscribed; an
//       // error means NOT subscribed and nothing kept of the request.
//       void subscribe(const std::string& topic, wshub::Completion done);
//
//       // Stop receiving `topic`. done(ec) always comes; afterwards the topic
//       // is not subscribed (an error only says the backend could not confirm).
//       void unsubscribe(const std::string& topic, wshub::Completion done);
//
//       // Send payload to every subscriber of topic, on every instance,
//       // including this one. done(ec): an error means it was not sent.
//       void publish(const std::string& topic, std::string payload, wshub::Completion done);
//
//       // Current state: up (messages flow) or down (reconnecting).
//       wshub::PubSubState state() const;
//   };
//
// Rules: `done` and the handlers are never invoked from inside the call that
// caused them (always from the executor, later), so the hub never re-enters
// itself. Messages for one topic arrive in the order they were published by
// one publisher. The hub calls the PubSub from its strand only.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace wshub {

using Completion = std::function<void(std::error_code)>;

enum class PubSubState : std::uint8_t {
    up,    // connected; subscriptions active; publishes go out
    down,  // not connected; publishes fail with error::unavailable; subscriptions are restored on reconnect
};

struct PubSubHandlers {
    // A payload arrived on a subscribed topic. Strings are moved in.
    std::function<void(std::string topic, std::string payload)> on_message;
    // The backend went up or down.
    std::function<void(PubSubState)> on_state;
    // After a reconnect, these topics were subscribed again; messages published
    // on them while the backend was down may be lost.
    std::function<void(std::vector<std::string> topics)> on_resubscribed;
};

namespace detail {

template <class T, class = void>
struct has_pubsub_set_handlers : std::false_type {};
template <class T>
struct has_pubsub_set_handlers<T, std::void_t<decltype(std::declval<T&>().set_handlers(std::declval<PubSubHandlers>()))>>
    : std::true_type {};

template <class T, class = void>
struct has_subscribe : std::false_type {};
template <class T>
struct has_subscribe<T, std::void_t<decltype(std::declval<T&>().subscribe(std::declval<const std::string&>(),
                                                                          std::declval<Completion>()))>>
    : std::true_type {};

template <class T, class = void>
struct has_unsubscribe : std::false_type {};
template <class T>
struct has_unsubscribe<T, std::void_t<decltype(std::declval<T&>().unsubscribe(std::declval<const std::string&>(),
                                                                              std::declval<Completion>()))>>
    : std::true_type {};

template <class T, class = void>
struct has_publish : std::false_type {};
template <class T>
struct has_publish<T, std::void_t<decltype(std::declval<T&>().publish(
                          std::declval<const std::string&>(), std::declval<std::string>(), std::declval<Completion>()))>>
    : std::true_type {};

template <class T, class = void>
struct has_state : std::false_type {};
template <class T>
struct has_state<T, std::enable_if_t<std::is_convertible_v<decltype(std::declval<const T&>().state()), PubSubState>>>
    : std::true_type {};

}  // namespace detail

template <class T>
inline constexpr bool is_pubsub_v = detail::has_pubsub_set_handlers<T>::value && detail::has_subscribe<T>::value &&
                                    detail::has_unsubscribe<T>::value && detail::has_publish<T>::value &&
                                    detail::has_state<T>::value;

// Fails compilation with a message that names the first missing member.
template <class T>
constexpr bool check_pubsub() {
    static_assert(detail::has_pubsub_set_handlers<T>::value,
                  "wshub PubSub requirement: void set_handlers(wshub::PubSubHandlers) is missing");
    static_assert(detail::has_subscribe<T>::value,
                  "wshub PubSub requirement: void subscribe(const std::string&, wshub::Completion) is missing");
    static_assert(detail::has_unsubscribe<T>::value,
                  "wshub PubSub requirement: void unsubscribe(const std::string&, wshub::Completion) is missing");
    static_assert(detail::has_publish<T>::value,
                  "wshub PubSub requirement: void publish(const std::string&, std::string, wshub::Completion) is missing");
    static_assert(detail::has_state<T>::value, "wshub PubSub requirement: wshub::PubSubState state() const is missing");
    return true;
}

}  // namespace wshub
