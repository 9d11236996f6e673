// Package e2e holds the end-to-end test of the status page: five status
// handlers on 127.0.0.1, shaped like the default herd, and the page of the
// first one driven in headless Chromium. It has no code besides its test;
// run it with scripts/status-e2e.sh, which installs Chromium when missing.
package e2e
