// Package all registers every built-in driver. Import it for its side effect.
package all

import (
	_ "github.com/edgestock/edgestock/drivers/events"   // generic JSON events
	_ "github.com/edgestock/edgestock/drivers/filedrop" // CSV and JSON-lines file drops
	_ "github.com/edgestock/edgestock/drivers/pos"      // POS tickets
	_ "github.com/edgestock/edgestock/drivers/scanner"  // barcode scanners
)
