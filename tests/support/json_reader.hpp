// tests/support/json_reader.hpp: parse the hub's OWN output frames in tests.
//
// Only server-produced frames go through RapidJSON here (they are trusted);
// client input never does (see detail/json_scanner.hpp for why).
#pragma once

#include <string>
#include <vector>

#include <rapidjson/document.h>

namespace wshub::test {

inline rapidjson::Document parse_frame(const std::string& text) {
    rapidjson::Document doc;
    doc.Parse(text.c_str(), text.size());
    return doc;
}

// The "type" of a server frame, or "" when it does not start with one. Our
// encoder always writes "type" first; reading it from the prefix keeps frames
// whose data RapidJSON cannot parse (1e400) countable.
inline std::string frame_type(const std::string& text) {
    const std::string start = "{\"type\":\"";
    if (text.compare(0, start.size(), start) != 0) return {};
    const auto end = text.find('"', start.size());
    if (end == std::string::npos) return {};
    return text.substr(start.size(), end - start.size());
}

inline std::string string_field(const std::string& text, const char* name) {
    const auto doc = parse_frame(text);
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember(name) || !doc[name].IsString()) return {};
    return doc[name].GetString();
}

// Frames of one type among those received.
inline std::vector<std::string> frames_of_type(const std::vector<std::string>& frames, const std::string& type) {
    std::vector<std::string> out;
    for (const auto& f : frames) {
        if (frame_type(f) == type) out.push_back(f);
    }
    return out;
}

}  // namespace wshub::test
