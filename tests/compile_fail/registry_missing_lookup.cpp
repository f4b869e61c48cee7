// expect: wshub Registry requirement: void lookup\(const std::string&, wshub::LookupHandler\) is missing
// A Hub whose Policies::registry has no lookup() must not compile, and the
// error must name what is missing.
#include <asio/io_context.hpp>

#include "support/memory_transport.hpp"
#include "wshub/hub.hpp"
#include "wshub/local_pubsub.hpp"

struct RegistryWithoutLookup {
    static constexpr bool distributed = true;
    void start(const std::string&, const std::string&) {}
    void add_connection(const std::string&, const wshub::ConnectionInfo&) {}
    void remove_connection(const std::string&) {}
    void send_to_connection(const std::string&, std::string, wshub::Completion) {}
    void send_to_user(const std::string&, std::string, wshub::DeliveryHandler) {}
    void presence_add(const std::string&, const std::string&) {}
    void presence_remove(const std::string&, const std::string&) {}
    void presence_members(const std::string&, wshub::MembersHandler) {}
    void close(wshub::Completion) {}
};

struct Policies : wshub::DefaultPolicies {
    using registry = RegistryWithoutLookup;
};

int main() {
    asio::io_context io;
    wshub::test::MemoryTransport transport;
    wshub::LocalPubSub pubsub(io.get_executor());
    RegistryWithoutLookup registry;
    wshub::Hub<wshub::test::MemoryTransport, wshub::LocalPubSub, Policies> hub(io.get_executor(), transport, pubsub,
                                                                            registry);
}
