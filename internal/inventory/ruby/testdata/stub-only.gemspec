# -*- encoding: utf-8 -*-
# stub: computed 2.0.0 ruby lib

Gem::Specification.new do |s|
  s.name = NAME
  s.version = Computed::VERSION
end
