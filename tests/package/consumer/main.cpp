// A program that uses wshub the way a user does; the package tests build and run it.
#include <wshub/wshub.hpp>

#include <iostream>
#include <string>
#include <system_error>

int main() {
    const std::error_code ec = wshub::error::invalid_channel;
    std::cout << ec.category().name() << ": " << ec.message() << " ("
              << wshub::protocol_code(wshub::error::invalid_channel) << ")\n";
    const bool ok = ec == wshub::make_error_code(wshub::error::invalid_channel) &&
                    std::string(ec.category().name()) == "wshub" &&
                    ec.message() == "invalid channel name" &&
                    wshub::protocol_code(wshub::error::invalid_channel) == "invalid_channel";
    return ok ? 0 : 1;
}
