# -*- encoding: utf-8 -*-

Gem::Specification.new do |s|
  s.name = %q{legacy-gem}
  s.version = "0.9.2"

  s.required_rubygems_version = Gem::Requirement.new(">= 0") if s.respond_to? :required_rubygems_version=
  s.authors = [%q{Somebody}]
  s.license = 'BSD-3-Clause' # a comment "with quotes"
  s.summary = %q{An old gem written by RubyGems 1.8}
end
