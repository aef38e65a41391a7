module github.com/nri-armor/nri-armor

go 1.26

require go.yaml.in/yaml/v3 v3.0.6
