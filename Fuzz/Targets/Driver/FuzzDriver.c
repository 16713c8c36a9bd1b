/*
 * SwiftPM links every executable target with its own `main` (renamed from the
 * module's entry point so that tests can import executables), so libFuzzer's
 * `main` never runs. Each fuzz target's `@main` calls this instead, which
 * starts libFuzzer's driver exactly as its own `main` would.
 */
#include "FuzzDriver.h"

int LLVMFuzzerRunDriver(int *argc, char ***argv, x402_fuzz_one_input one_input);

int
x402_fuzz_run(int argc, char **argv, x402_fuzz_one_input one_input)
{
    return LLVMFuzzerRunDriver(&argc, &argv, one_input);
}
