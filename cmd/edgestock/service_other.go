//go:build !windows

package main

// setNonCrashRecovery: only Windows distinguishes non-crash failures;
// systemd's Restart=on-failure covers every failure.
func setNonCrashRecovery(string) error { return nil }
