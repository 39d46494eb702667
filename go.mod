module github.com/eventpipeline/eventpipeline

go 1.26
