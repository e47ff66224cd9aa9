#pragma once
// The `proxer` command line: gateway, agent, http, up.
namespace proxer::app {
int main(int argc, char** argv);
}
