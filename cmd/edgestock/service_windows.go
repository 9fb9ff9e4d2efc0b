//go:build windows

package main

import "golang.org/x/sys/windows/svc/mgr"

// setNonCrashRecovery makes Windows apply the recovery actions when the
// service exits with an error, not only when it crashes (kardianos sets
// the actions but not this flag).
func setNonCrashRecovery(name string) error {
	m, err := mgr.Connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.SetRecoveryActionsOnNonCrashFailures(true)
}
