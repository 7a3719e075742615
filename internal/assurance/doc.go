// Package assurance decides whether an image passes an assurance policy: a
// YAML file of controls such as "no fixable CRITICAL finding" or "no
// log4j-core below 2.17.1". The CLI's --severity, --ignore-unfixed and
// --exit-code flags are turned into a Policy too (see Gate), so one
// evaluator serves the CLI, the server and the admission controller.
//
// Evaluation is pure: it reads nothing but its arguments, not even the
// clock (Subject.Now) or the registry (Subject.Signatures are verified
// beforehand with package signature). Only Load reads files: the policy and
// the public key files it names. docs/assurance.md defines every control
// and exceptions.
package assurance
