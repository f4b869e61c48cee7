// wshub/registry_concept.hpp: what the Hub needs from a connection registry,
// the traits that check it, and NoRegistry, the registry of a single instance.
//
// A registry knows which instance holds which connection, across the whole
// deployment: it routes direct messages to exactly the instance that holds the
// target, answers presence queries for every instance, and cleans up after an
// instance that crashed. The requirement, written once (docs/concepts.md says
// the same in prose):
//
//   class Registry {
//   public:
//       // false: everything is on this instance (the hub answers presence and
//       // direct messages from its own state and never calls the members below
//       // but start/add/remove/close).
//       static constexpr bool distributed = true;
//
//       // Called once, by the Hub's constructor, with its instance id and key prefix.
//       void start(const std::string& instance_id, const std::string& prefix);
//
//       // A connection opened / closed on this instance (public id, see welcome).
//       void add_connection(const std::string& connection, const wshub::ConnectionInfo& info);
//       void remove_connection(const std::string& connection);
//
//       // Where a connection lives; error::not_found when unknown or its
//       // instance is dead, error::unavailable when the registry cannot tell.
//       void lookup(const std::string& connection, wshub::LookupHandler done);
//
//       // Deliver an opaque payload to the inbox of the instance that holds
//       // `connection` (one instance, no broadcast); not_found / unavailable.
//       void send_to_connection(const std::string& connection, std::string payload, wshub::Completion done);
//
//       // Deliver to the inbox of every OTHER instance holding a connection
//       // of `user`; done(ec, instances reached).
//       void send_to_user(const std::string& user, std::string payload, wshub::DeliveryHandler done);
//
//       // This instance's connection joined / left a presence channel.
//       void presence_add(const std::string& channel, const std::string& connection);
//       void presence_remove(const std::string& channel, const std::string& connection);
//       // The live members of a presence channel, on every instance.
//       void presence_members(const std::string& channel, wshub::MembersHandler done);
//
//       // Graceful end: remove this instance's entries, then done(ec).
//       void close(wshub::Completion done);
//   };
//
// Rules: the hub calls it from its strand only. Handlers may run inside the
// call (NoRegistry's do) or later on the registry's executor; the hub posts
// them onto its strand either way. The payloads it carries reach the
// hub through the PubSub, on the topic <prefix>inbox:<instance>, which the hub
// subscribes when `distributed` is true.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "wshub/connection_info.hpp"
#include "wshub/error.hpp"
#include "wshub/pubsub_concept.hpp"

namespace wshub {

// What the registry knows of one connection.
struct ConnectionRecord {
    std::string connection;  // public id
    std::string instance;    // the instance holding it
    std::string user;        // from the authentication hook; empty for anonymous
    std::int64_t since_ms = 0;  // when it opened, milliseconds since the Unix epoch
};

using LookupHandler = std::function<void(std::error_code, ConnectionRecord)>;
using DeliveryHandler = std::function<void(std::error_code, std::size_t instances_reached)>;
using MembersHandler = std::function<void(std::error_code, std::vector<PresenceMember>)>;

// The registry of a deployment of one instance: nothing to register, nowhere
// else to look. Stateless, so one may serve any number of hubs.
//
// Thread safety: every member is safe from any thread (they do nothing).
class NoRegistry {
public:
    static constexpr bool distributed = false;
    void start(const std::string&, const std::string&) {}
    void add_connection(const std::string&, const ConnectionInfo&) {}
    void remove_connection(const std::string&) {}
    // Never called by the hub (distributed is false); answer as an empty registry would.
    void lookup(const std::string&, LookupHandler done) { fail(std::move(done), ConnectionRecord{}); }
    void send_to_connection(const std::string&, std::string, Completion done) {
        if (done) done(make_error_code(error::not_found));
    }
    void send_to_user(const std::string&, std::string, DeliveryHandler done) {
        if (done) done({}, 0);
    }
    void presence_add(const std::string&, const std::string&) {}
    void presence_remove(const std::string&, const std::string&) {}
    void presence_members(const std::string&, MembersHandler done) {
        if (done) done({}, {});
    }
    void close(Completion done) {
        if (done) done({});
    }

private:
    static void fail(LookupHandler done, ConnectionRecord record) {
        if (done) done(make_error_code(error::not_found), std::move(record));
    }
};

namespace detail {

template <class T, class = void>
struct has_distributed : std::false_type {};
template <class T>
struct has_distributed<T, std::enable_if_t<std::is_same_v<std::decay_t<decltype(T::distributed)>, bool>>>
    : std::true_type {};

#define WSHUB_REGISTRY_TRAIT(name, call)                                                  \
    template <class T, class = void>                                                     \
    struct name : std::false_type {};                                                    \
    template <class T>                                                                   \
    struct name<T, std::void_t<decltype(std::declval<T&>().call)>> : std::true_type {};

WSHUB_REGISTRY_TRAIT(has_registry_start, start(std::declval<const std::string&>(), std::declval<const std::string&>()))
WSHUB_REGISTRY_TRAIT(has_add_connection,
                     add_connection(std::declval<const std::string&>(), std::declval<const ConnectionInfo&>()))
WSHUB_REGISTRY_TRAIT(has_remove_connection, remove_connection(std::declval<const std::string&>()))
WSHUB_REGISTRY_TRAIT(has_lookup, lookup(std::declval<const std::string&>(), std::declval<LookupHandler>()))
WSHUB_REGISTRY_TRAIT(has_send_to_connection,
                     send_to_connection(std::declval<const std::string&>(), std::declval<std::string>(),
                                        std::declval<Completion>()))
WSHUB_REGISTRY_TRAIT(has_send_to_user, send_to_user(std::declval<const std::string&>(), std::declval<std::string>(),
                                                    std::declval<DeliveryHandler>()))
WSHUB_REGISTRY_TRAIT(has_presence_add,
                     presence_add(std::declval<const std::string&>(), std::declval<const std::string&>()))
WSHUB_REGISTRY_TRAIT(has_presence_remove,
                     presence_remove(std::declval<const std::string&>(), std::declval<const std::string&>()))
WSHUB_REGISTRY_TRAIT(has_presence_members,
                     presence_members(std::declval<const std::string&>(), std::declval<MembersHandler>()))
WSHUB_REGISTRY_TRAIT(has_registry_close, close(std::declval<Completion>()))

#undef WSHUB_REGISTRY_TRAIT

}  // namespace detail

template <class T>
inline constexpr bool is_registry_v =
    detail::has_distributed<T>::value && detail::has_registry_start<T>::value &&
    detail::has_add_connection<T>::value && detail::has_remove_connection<T>::value && detail::has_lookup<T>::value &&
    detail::has_send_to_connection<T>::value && detail::has_send_to_user<T>::value &&
    detail::has_presence_add<T>::value && detail::has_presence_remove<T>::value &&
    detail::has_presence_members<T>::value && detail::has_registry_close<T>::value;

// Fails compilation with a message that names the first missing member.
template <class T>
constexpr bool check_registry() {
    static_assert(detail::has_distributed<T>::value,
                  "wshub Registry requirement: static constexpr bool distributed is missing");
    static_assert(detail::has_registry_start<T>::value,
                  "wshub Registry requirement: void start(const std::string& instance_id, const std::string& prefix) "
                  "is missing");
    static_assert(detail::has_add_connection<T>::value,
                  "wshub Registry requirement: void add_connection(const std::string&, const wshub::ConnectionInfo&) "
                  "is missing");
    static_assert(detail::has_remove_connection<T>::value,
                  "wshub Registry requirement: void remove_connection(const std::string&) is missing");
    static_assert(detail::has_lookup<T>::value,
                  "wshub Registry requirement: void lookup(const std::string&, wshub::LookupHandler) is missing");
    static_assert(detail::has_send_to_connection<T>::value,
                  "wshub Registry requirement: void send_to_connection(const std::string&, std::string, "
                  "wshub::Completion) is missing");
    static_assert(detail::has_send_to_user<T>::value,
                  "wshub Registry requirement: void send_to_user(const std::string&, std::string, "
                  "wshub::DeliveryHandler) is missing");
    static_assert(detail::has_presence_add<T>::value,
                  "wshub Registry requirement: void presence_add(const std::string& channel, const std::string& "
                  "connection) is missing");
    static_assert(detail::has_presence_remove<T>::value,
                  "wshub Registry requirement: void presence_remove(const std::string& channel, const std::string& "
                  "connection) is missing");
    static_assert(detail::has_presence_members<T>::value,
                  "wshub Registry requirement: void presence_members(const std::string&, wshub::MembersHandler) is "
                  "missing");
    static_assert(detail::has_registry_close<T>::value,
                  "wshub Registry requirement: void close(wshub::Completion) is missing");
    return true;
}

}  // namespace wshub
