package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	"gopkg.in/ini.v1"
)

// clientKeys are the keys osc reads from a MySQL option file's [client]
// section (gh-ost's --conf reads user and password there), and the flags
// they set. Other keys of [client] are the mysql client's, and are ignored.
var clientKeys = map[string]string{"user": "user", "password": "password", "host": "host", "port": "port"}

// applyConf sets, from the file, every flag the command line did not set:
// user, password, host and port from the [client] section, and any long
// flag (without its dashes) from the [osc] section or from before any
// section, as "name = value". A value is taken as written, # and ; included
// (quotes around it are removed), so a password needs no escaping.
func applyConf(fs *pflag.FlagSet, path string) error {
	f, err := ini.LoadSources(ini.LoadOptions{IgnoreInlineComment: true, AllowBooleanKeys: true}, path)
	if err != nil {
		return fmt.Errorf("--conf %s: %w", path, err)
	}
	set := func(section, key, name, value string) error {
		if fs.Changed(name) {
			return nil // the command line wins
		}
		if err := fs.Set(name, value); err != nil {
			// Never echo the value: it may be the password.
			return fmt.Errorf("--conf %s: [%s] %s: not a valid value for --%s", path, section, key, name)
		}
		return nil
	}
	if s, err := f.GetSection("client"); err == nil {
		for _, k := range s.Keys() {
			if name, ok := clientKeys[k.Name()]; ok {
				if err := set("client", k.Name(), name, k.Value()); err != nil {
					return err
				}
			}
		}
	}
	for _, section := range []string{ini.DefaultSection, "osc"} {
		s, err := f.GetSection(section)
		if err != nil {
			continue
		}
		for _, k := range s.Keys() {
			name := strings.TrimPrefix(k.Name(), "--")
			if fs.Lookup(name) == nil || name == "conf" || name == "help" || name == "version" {
				return fmt.Errorf("--conf %s: [%s] %s is not an osc flag", path, s.Name(), k.Name())
			}
			value := k.Value()
			if value == "" && fs.Lookup(name).Value.Type() == "bool" {
				value = "true" // a boolean key alone: "execute"
			}
			if err := set(s.Name(), k.Name(), name, value); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseWithConf parses args, then sets from the --conf file (conf, which
// Parse fills) the flags args did not set. --help is returned as is, any
// other failure as a usage error.
func parseWithConf(fs *pflag.FlagSet, args []string, conf *string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if *conf != "" {
		if err := applyConf(fs, *conf); err != nil {
			return usageError{err}
		}
	}
	return nil
}
