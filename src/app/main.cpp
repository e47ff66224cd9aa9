#include "app/cli.h"

int main(int argc, char** argv) {
  return proxer::app::main(argc, argv);
}
