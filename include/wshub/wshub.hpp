// wshub/wshub.hpp: everything a user of wshub includes.
#pragma once

#include "wshub/error.hpp"
#include "wshub/frame.hpp"
#include "wshub/request.hpp"
