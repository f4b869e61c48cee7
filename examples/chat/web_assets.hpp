// web_assets.hpp: the chat page's files, embedded at build time by cmake/embed_web.cmake.
#pragma once

#include <string_view>
#include <vector>

namespace chat {

struct WebAsset {
    std::string_view name;     // file name, e.g. "index.html"
    std::string_view content;  // the bytes
};

const std::vector<WebAsset>& web_assets();

}  // namespace chat
